// A person goes from the choice of verification method to a confirmed reservation, then
// changes it, in headless Chromium against a real `yeyak serve`; then an operator watches the
// queue depth and a clinic's fill move on /operator. Screenshots of every step are kept in
// target/e2e-artifacts/ (phone size 360 px, and desktop).
const { test, expect } = require("@playwright/test");
const path = require("path");
const { startServer, residentId } = require("./server");
const { ARTIFACTS, PHONE, DESKTOP, shot, accessible, fillVerification, pageErrorsOf, placesAskedBy, bothLanguages, onlyTheLanguageKept } = require("./page");


// Booking day of birth-date last digit 9: 2021-08-09 20:00 until 2021-08-10 18:00 (KST).
const BOOKING_DAY_9 = "2021-08-09T21:00:00+09:00";
// The change window: 2021-08-19 20:00 until 2021-09-18 18:00 (KST).
const CHANGE_WINDOW = "2021-08-20T10:00:00+09:00";

// Each clinic's road address, given with its first supply (the later ones may leave it out).
const JONGNO = "서울 종로구 종로 1";
const HAEUNDAE = "부산 해운대구 해운대로 264";
const SUPPLY = [
  { clinic_id: "seoul-jongno-01", name: "종로중앙의원", region: "서울", address: JONGNO, date: "2021-08-30", doses: 100 },
  { clinic_id: "seoul-jongno-01", name: "종로중앙의원", region: "서울", date: "2021-08-31", doses: 100 },
  // A region given as its code: the page names it (부산 / Busan).
  { clinic_id: "busan-haeundae-01", name: "해운대시민병원", region: "busan", address: HAEUNDAE, date: "2021-09-01", doses: 100 },
];

// A booking code as the page shows it: Crockford's base32, two groups of five.
const CODE = /^[0-9A-HJKMNP-TV-Z]{5}-[0-9A-HJKMNP-TV-Z]{5}$/;

// Deliveries registered in the change window go to the pool.
const LATER_DELIVERIES = [
  { clinic_id: "seoul-jongno-01", name: "종로중앙의원", region: "서울", date: "2021-08-31", doses: 10 },
  { clinic_id: "busan-haeundae-01", name: "해운대시민병원", region: "busan", date: "2021-09-01", doses: 10 },
];

// People queued just before the person under test.
const CROWD = 24;

let server;

test.describe.serial("the citizen's page", () => {
  test.beforeAll(async () => {
    // Two admissions a second, so that a crowd of CROWD people ahead makes a visible line.
    server = await startServer({
      clock: BOOKING_DAY_9, logFile: path.join(ARTIFACTS, "server.log"), extraArgs: ["--admit-per-s", "2"],
    });
    for (const s of SUPPLY) await server.admin("/admin/supply", s);
  });

  test.afterAll(async () => {
    if (server) await server.stop();
  });

  // Waits until one of the views is shown and returns its name.
  async function nextView(page, names, timeout = 60_000) {
    const selector = names.map((n) => `#view-${n}:not([hidden])`).join(", ");
    const el = await page.waitForSelector(selector, { timeout });
    return (await el.getAttribute("id")).slice("view-".length);
  }

  // From the verification or the waiting room to the clinic choice; a screenshot of the
  // waiting room when the server keeps the person there long enough to see it.
  async function throughQueue(page, shotName) {
    const view = await nextView(page, ["queue", "choose"]);
    if (view === "queue") {
      await expect(page.locator("#queue-position")).not.toHaveText("–", { timeout: 30_000 }).catch(() => {});
      if (shotName) await shot(page, shotName);
    }
    await expect(page.locator("#view-choose")).toBeVisible({ timeout: 90_000 });
    await expect(page.locator("#clinic-list .choice").first()).toBeVisible();
  }

  // Minutes since midnight, Korea time, of an instant.
  const kstMinutes = (ms) => Math.floor(ms / 60_000 + 9 * 60) % 1440;

  // The operator page shows one clock, the server's: #server-now is the server's time (its
  // clock was set to 2021-08-20 10:00 KST, which the browser's rarely is), and every clock time on the
  // page (to the second: the calendar's opening hours are not clocks) is the server's now or in
  // the hour before it, never the browser's.
  async function oneClock(page, status) {
    const serverNow = kstMinutes(Date.parse(status.now));
    const shown = (await page.locator("#server-now").textContent()).match(/(\d{1,2}):(\d{2})/);
    expect(shown, "#server-now shows a time of day").not.toBeNull();
    const times = await page.evaluate(() => document.body.innerText.match(/\b\d{1,2}:\d{2}:\d{2}\b/g) || []);
    expect(times.length).toBeGreaterThan(0);
    for (const time of [shown[0], ...times]) {
      const [h, m] = time.split(":").map(Number);
      const behind = (serverNow - (h * 60 + m) + 1440) % 1440;
      expect(behind <= 65 || behind >= 1440 - 2, `${time} is not the server's time (${status.now})`).toBe(true);
    }
    const [h, m] = shown.slice(1).map(Number);
    const off = (h * 60 + m - serverNow + 1440) % 1440;
    expect(off <= 2 || off >= 1438, `#server-now ${shown[0]} against the server's ${status.now}`).toBe(true);
  }

  async function serverReservation(page) {
    const state = await page.evaluate(() => JSON.parse(sessionStorage.getItem("yeyak.state.v1")));
    for (const token of [state.session && state.session.token, state.admission]) {
      if (!token) continue;
      const res = await fetch(server.base + "/v1/reservations/me", { headers: { Authorization: `Bearer ${token}` } });
      if (res.ok) return res.json();
    }
    throw new Error("no token of the page can read the reservation");
  }

  test("the page served is the one in web/", async () => {
    const fs = require("fs");
    const web = path.resolve(__dirname, "../../web");
    for (const [url, file] of [["/", "index.html"], ["/static/app.js", "app.js"], ["/static/style.css", "style.css"],
      ["/operator", "operator.html"], ["/static/operator.js", "operator.js"], ["/static/regions.js", "regions.js"]]) {
      const res = await fetch(server.base + url);
      expect(res.status).toBe(200);
      expect(await res.text(), `${url} differs from web/${file}`).toBe(fs.readFileSync(path.join(web, file), "utf8"));
    }
  });

  test("phone: from method choice to a confirmed reservation, then a change", async ({ browser }) => {
    const context = await browser.newContext({ viewport: PHONE, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    const page = await context.newPage();
    const pageErrors = pageErrorsOf(page);
    const rid = residentId(1990, 5, 19, 31415);

    // An operator switches one provider off: its light is grey and it cannot be chosen.
    await server.admin("/admin/providers", { method: "financial_certificate", outage: true });

    // 1. The lights: every method with a level, the fastest usable one recommended and selected.
    await page.goto(server.base + "/");
    const off = page.locator('#method-list .method[data-method="financial_certificate"]');
    await expect(off).toHaveAttribute("data-level", "grey");
    await expect(off.locator("input")).toBeDisabled();
    await expect(page.locator("html")).toHaveAttribute("lang", "ko");
    await expect(page.locator("#method-list .method").first()).toBeVisible();
    const methods = page.locator("#method-list .method");
    expect(await methods.count()).toBeGreaterThanOrEqual(7);
    const recommended = page.locator("#method-list .method:has(.badge)");
    await expect(recommended).toHaveCount(1);
    await expect(recommended).not.toHaveAttribute("data-level", "grey");
    await expect(recommended.locator("input")).toBeChecked();
    // The recommendation is the best usable light, then the shortest measured wait (compared
    // within one rendered answer of GET /v1/congestion: the lights move).
    const lights = await page.$$eval("#method-list .method", (cards) => cards.map((c) => ({
      method: c.dataset.method, level: c.dataset.level, wait: c.dataset.waitS === "" ? null : Number(c.dataset.waitS),
      recommended: !!c.querySelector(".badge"),
    })));
    const rank = { green: 0, yellow: 1, red: 2 };
    const usable = lights.filter((l) => l.level in rank && l.wait !== null);
    expect(usable.length).toBeGreaterThan(0);
    const best = usable.reduce((a, b) => (rank[b.level] < rank[a.level] || (rank[b.level] === rank[a.level] && b.wait < a.wait) ? b : a));
    const badge = lights.find((l) => l.recommended);
    expect([badge.level, badge.wait]).toEqual([best.level, best.wait]);
    await shot(page, "phone-01-method");
    await accessible(page, "method choice");

    // 2. Verification (a wrong number first: the server's code is shown, nothing moves on).
    await page.locator("#method-next").click();
    await expect(page.locator("#view-verify")).toBeVisible();
    await fillVerification(page, "김민준", "900519-1000000");
    await expect(page.locator("#alert")).toContainText("invalid_resident_id");
    await expect(page.locator("#view-verify")).toBeVisible();
    await shot(page, "phone-02-verify-error");
    await accessible(page, "verification with an error");
    await server.crowd(CROWD, { year: 1991, month: 3, day: 9 });
    await fillVerification(page, "김민준", rid);

    // 3. The waiting room: a line ahead that gets shorter, with an ETA, until the server admits.
    await expect(page.locator("#view-queue")).toBeVisible();
    const ahead = async () => Number((await page.locator("#queue-position").textContent()).replace(/\D/g, ""));
    await expect.poll(ahead, { timeout: 10_000 }).toBeGreaterThan(0);
    const first = await ahead();
    await expect(page.locator("#queue-eta")).not.toHaveText("–");
    await shot(page, "phone-03-queue");
    await bothLanguages(page, { point: "point3", size: "phone", what: "queue", check: async () => {
      await expect(page.locator("#queue-eta")).toHaveText(/ to |about |any moment/);
      await expect(page.locator("#queue-eta")).toHaveAttribute("data-range-s", /^\d+-\d+$/);
    } });
    await expect.poll(ahead, { timeout: 30_000 }).toBeLessThan(first);
    await shot(page, "phone-03b-queue-later");

    // 4. Admitted: clinic and date from the slots.
    await throughQueue(page);
    // The tokens live in this tab's sessionStorage only; no resident number, no birth date.
    const [local, session] = await page.evaluate(() => [JSON.stringify(localStorage), JSON.stringify(sessionStorage)]);
    expect(local).not.toContain("yeyak.state");
    await onlyTheLanguageKept(page);
    expect(session).toContain("yeyak.state.v1");
    for (const stored of [local, session]) {
      expect(stored).not.toContain(rid.replace("-", ""));
      expect(stored).not.toContain(rid.split("-")[1]);
      expect(stored).not.toContain("1990-05-19");
      expect(stored).not.toContain(rid.split("-")[0]);
    }
    // Point 6: each clinic's address under its name, at 360 px.
    await expect(page.locator('label[data-clinic="seoul-jongno-01"] .choice-addr')).toHaveText(JONGNO);
    await expect(page.locator('label[data-clinic="busan-haeundae-01"] .choice-addr')).toHaveText(HAEUNDAE);
    const fits = await page.$$eval("#clinic-list .choice-addr", (spans) => spans.every((s) => s.getBoundingClientRect().right <= window.innerWidth));
    expect(fits).toBe(true);
    await bothLanguages(page, { point: "point6", size: "phone", what: "address-list", check: async () => {
      await expect(page.locator('label[data-clinic="seoul-jongno-01"] .choice-addr')).toHaveText(JONGNO);
    } });
    await page.locator('label[data-clinic="seoul-jongno-01"]').click();
    await page.locator('label[data-date="2021-08-30"]').click();
    await shot(page, "phone-04-choose");
    await accessible(page, "clinic and date");
    await page.locator("#choose-next").click();
    await expect(page.locator("#view-confirm")).toBeVisible();
    await expect(page.locator("#confirm-summary")).toContainText("종로중앙의원");
    await shot(page, "phone-05-confirm");

    // 5. Confirmed.
    await page.locator("#confirm-submit").click();
    await expect(page.locator("#view-done")).toBeVisible();
    await expect(page.locator("#h-done")).toHaveText("예약이 완료되었습니다");
    await expect(page.locator("#done-summary")).toContainText("종로중앙의원");
    await expect(page.locator("#done-summary")).toContainText("8월 30일");
    await shot(page, "phone-06-done");
    await accessible(page, "done");
    // Point 6: the booking code to read out, next to the reservation id.
    const codeBooked = (await page.locator("#done-summary dd.code").textContent()).trim();
    expect(codeBooked).toMatch(CODE);
    await expect(page.locator("#done-summary dd.id")).toHaveText(/^[0-9a-f-]{36}$/);
    await expect(page.locator("#done-summary")).toContainText("예약번호");
    await bothLanguages(page, { point: "point6", size: "phone", what: "code-and-address", check: async () => {
      await expect(page.locator("#done-summary")).toContainText("Booking code");
      await expect(page.locator("#done-summary dd.code")).toHaveText(codeBooked);
      await expect(page.locator("#done-summary dt:text-is('Address') + dd")).toHaveText(JONGNO);
      await expect(page.locator("#done-summary dt:text-is('Region') + dd")).toHaveText("Seoul");
    } });
    // Point 6: the reservation names the clinic's address.
    await expect(page.locator("#done-summary dt", { hasText: "주소" })).toBeVisible();
    await expect(page.locator("#done-summary")).toContainText(JONGNO);
    const booked = await serverReservation(page);
    expect(booked.reservation_code).toBe(codeBooked.replace("-", ""));
    expect(JSON.stringify(booked)).toContain("seoul-jongno-01");
    expect(JSON.stringify(booked)).toContain("2021-08-30");

    // Later, in the change window: the same person views the reservation and changes it.
    // The change window draws on each clinic's pool: the day shares' leftovers, released by
    // the clinic's first command after the last booking day closes (here a later delivery).
    await server.admin("/admin/clock", { now: CHANGE_WINDOW });
    for (const s of LATER_DELIVERIES) await server.admin("/admin/supply", s);
    await page.locator("#done-manage").click();
    let view = await nextView(page, ["manage", "verify", "queue"]);
    if (view === "verify") {
      // The session token expired with the server's clock: verify again, as a person would.
      await fillVerification(page, "김민준", rid);
      view = await nextView(page, ["manage", "queue"], 90_000);
    }
    await expect(page.locator("#view-manage")).toBeVisible({ timeout: 90_000 });
    await expect(page.locator("#manage-summary")).toContainText("종로중앙의원");
    await shot(page, "phone-07-manage");
    await accessible(page, "my reservation");

    await page.locator("#manage-change").click();
    view = await nextView(page, ["choose", "queue", "verify"]);
    if (view === "verify") await fillVerification(page, "김민준", rid);
    await throughQueue(page, "phone-08-queue-for-change");
    await expect(page.locator("#h-choose")).toHaveText("변경할 기관과 날짜를 선택해 주세요");
    await page.locator('label[data-clinic="busan-haeundae-01"]').click();
    await page.locator('label[data-date="2021-09-01"]').click();
    await page.locator("#choose-next").click();
    await expect(page.locator("#confirm-summary")).toContainText("해운대시민병원");
    await page.locator("#confirm-submit").click();
    await expect(page.locator("#view-done")).toBeVisible();
    await expect(page.locator("#h-done")).toHaveText("예약이 변경되었습니다");
    await expect(page.locator("#done-summary")).toContainText("해운대시민병원");
    await expect(page.locator("#done-summary")).toContainText("9월 1일");
    // Point 6: the region by its name, and the change says the code changed, from what to what.
    await expect(page.locator("#done-summary")).toContainText("부산");
    await expect(page.locator("#done-summary")).not.toContainText("busan");
    const codeChanged = (await page.locator("#done-summary dd.code").textContent()).trim();
    expect(codeChanged).toMatch(CODE);
    expect(codeChanged).not.toBe(codeBooked);
    await expect(page.locator("#done-code-note")).toHaveText(`예약번호가 바뀌었습니다: ${codeBooked} → ${codeChanged}. 새 예약번호를 적어 두세요.`);
    await shot(page, "phone-09-changed");
    await bothLanguages(page, { point: "point6", size: "phone", what: "changed", check: async () => {
      await expect(page.locator("#done-code-note")).toHaveText(`Your booking code has changed: ${codeBooked} → ${codeChanged}. Please note the new code.`);
      await expect(page.locator("#done-summary dt:text-is('Region') + dd")).toHaveText("Busan");
    } });
    const changed = await serverReservation(page);
    expect(JSON.stringify(changed)).toContain("busan-haeundae-01");
    expect(JSON.stringify(changed)).toContain("2021-09-01");

    // Finish (마치기): the next person at this phone finds nothing, not even after a reload.
    await page.locator("#finish").click();
    await expect(page.locator("#view-method")).toBeVisible();
    await expect(page.locator("#alert")).toContainText("모두 지웠습니다");
    await shot(page, "phone-10-finished");
    await bothLanguages(page, { point: "point7", size: "phone", what: "finished-after-change", check: async () => {
      await expect(page.locator("#alert")).toContainText("has been forgotten");
    } });
    // What is left: the language, and at most a blank flow (no token, ticket or reservation).
    const kept = async () => page.evaluate(() => ({
      flow: JSON.parse(sessionStorage.getItem("yeyak.state.v1") || "{}"),
      local: [localStorage.getItem("yeyak.state.v1"), localStorage.getItem("yeyak.device") ?? sessionStorage.getItem("yeyak.device")],
      all: JSON.stringify(localStorage) + JSON.stringify(sessionStorage),
    }));
    for (const when of ["finished", "reloaded"]) {
      if (when === "reloaded") {
        await page.reload();
        await expect(page.locator("#view-method")).toBeVisible();
      }
      const { flow, local, all } = await kept();
      for (const key of ["session", "admission", "ticket", "reservation", "choice"]) expect(flow[key] ?? null, `${when}: ${key}`).toBeNull();
      expect(local[0], when).toBeNull();
      if (when === "finished") expect(local[1]).toBeNull();
      expect(all).not.toContain("busan");
      expect(all).not.toContain("seoul");
    }

    expect(pageErrors).toEqual([]);
    await context.close();
  });

  test("desktop, in English: a second person books from the change window's pool", async ({ browser }) => {
    const context = await browser.newContext({ viewport: DESKTOP });
    const page = await context.newPage();
    const pageErrors = pageErrorsOf(page);
    await page.goto(server.base + "/");
    await expect(page.locator("#method-list .method").first()).toBeVisible();
    await page.locator("#lang-toggle").click();
    await expect(page.locator("html")).toHaveAttribute("lang", "en");
    await expect(page.locator("#h-method")).toHaveText("Choose how to verify your identity");
    await shot(page, "desktop-01-method-en");

    // The language is kept across a reload.
    await page.reload();
    await expect(page.locator("#h-method")).toHaveText("Choose how to verify your identity");

    await page.locator("#method-next").click();
    await fillVerification(page, "Seo-yeon Park", residentId(1985, 11, 29, 27182, true));
    await throughQueue(page, "desktop-02-queue-en");
    await expect(page.locator('label[data-clinic="seoul-jongno-01"] .choice-addr')).toHaveText(JONGNO);
    await page.locator('label[data-clinic="seoul-jongno-01"]').click();
    await page.locator('label[data-date="2021-08-31"]').click();
    await shot(page, "desktop-03-choose-en");
    await bothLanguages(page, { point: "point6", size: "desktop", what: "address-list", check: async () => {
      await expect(page.locator('label[data-clinic="seoul-jongno-01"] .choice-addr')).toHaveText(JONGNO);
    } });
    await page.locator("#choose-next").click();
    await page.locator("#confirm-submit").click();
    await expect(page.locator("#h-done")).toHaveText("Your vaccination is booked");
    await expect(page.locator("#done-summary")).toContainText("31 August 2021");
    // Point 6 in English: the booking code, and the region (given in Korean) by its English name.
    await expect(page.locator("#done-summary")).toContainText("Booking code");
    await expect(page.locator("#done-summary dd.code")).toHaveText(CODE);
    const region = page.locator("#done-summary dt:text-is('Region') + dd");
    await expect(region).toHaveText("Seoul");
    // Point 6 in English: the address, as the operator registered it (a Korean road address).
    await expect(page.locator("#done-summary dt:text-is('Address') + dd")).toHaveText(JONGNO);
    await shot(page, "desktop-04-done-en");
    await bothLanguages(page, { point: "point6", size: "desktop", what: "code-and-address", check: async () => {
      await expect(page.locator("#done-summary")).toContainText("예약번호");
      await expect(page.locator("#done-summary")).toContainText("8월 31일");
      await expect(page.locator("#done-summary dt:text-is('주소') + dd")).toHaveText(JONGNO);
      await expect(page.locator("#done-summary dt:text-is('지역') + dd")).toHaveText("서울");
    } });
    expect(pageErrors).toEqual([]);
    await context.close();
  });
  test("operator: the queue depth and a clinic's fill move live, with the admin token", async ({ browser }) => {
    const context = await browser.newContext({ viewport: PHONE, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    const page = await context.newPage();
    const pageErrors = pageErrorsOf(page);

    // The page loads without a token and asks for one; a wrong token is refused by the server.
    await page.goto(server.base + "/operator");
    await expect(page.locator("#view-login")).toBeVisible();
    await expect(page.locator("html")).toHaveAttribute("lang", "ko");
    await expect(page.locator("#h-login")).toHaveText("관리자 토큰을 입력해 주세요");
    await accessible(page, "operator token");
    await page.locator("#admin-token").fill("not-the-admin-token");
    await page.locator("#login-submit").click();
    await expect(page.locator("#token-err")).toContainText("invalid_token");
    await expect(page.locator("#view-status")).toBeHidden();
    await shot(page, "operator-01-token-refused");

    await page.locator("#admin-token").fill(server.adminToken);
    await page.locator("#login-submit").click();
    await expect(page.locator("#view-status")).toBeVisible();
    // The token lives in this tab's sessionStorage only.
    const stores = await page.evaluate(() => [JSON.stringify(localStorage), JSON.stringify(sessionStorage)]);
    expect(stores[0]).not.toContain(server.adminToken);
    expect(stores[1]).toContain(server.adminToken);

    // Lights for every method, the grey one the phone test switched off among them.
    await expect(page.locator('#lights li[data-method="financial_certificate"]')).toHaveAttribute("data-level", "grey");
    expect(await page.locator("#lights li").count()).toBeGreaterThanOrEqual(7);
    // The ledger's health next to the queue: the embedded ledger decides at once, and its last
    // decision is shown with its age.
    await expect(page.locator("#ledger")).toHaveAttribute("data-health", "ok");
    await expect(page.locator("#ledger-undecided")).toHaveText("0");
    await expect(page.locator("#ledger-last-at")).not.toHaveText("");
    // Ten booking days and the change window's pool, which is open now.
    await expect(page.locator("#days-body tr")).toHaveCount(11);
    await expect(page.locator('#days-body tr[data-share="pool"]')).toHaveClass(/open/);

    const clinic = page.locator('#clinics-body tr.clinic-row[data-clinic="seoul-jongno-01"]');
    const day = page.locator('#clinics-body tr.date-row[data-clinic="seoul-jongno-01"][data-date="2021-08-31"]');
    const pool = page.locator('#days-body tr[data-share="pool"]');
    await expect(clinic).toBeVisible();
    const booked = async (row) => Number(await row.getAttribute("data-booked"));
    const width = (row) => row.locator(".meter-bar").evaluate((e) => e.style.width);
    const before = { clinic: await booked(clinic), day: await booked(day), pool: await booked(pool), width: await width(day) };
    expect(Number(await day.getAttribute("data-capacity"))).toBeGreaterThan(0);
    await shot(page, "operator-02-status");
    await accessible(page, "operator status");

    // A booking elsewhere (through the API, as another browser would): the bars follow.
    await server.book({ birth: { year: 1993, month: 4, day: 21 }, serial: 61000, clinic_id: "seoul-jongno-01", date: "2021-08-31" });
    await expect.poll(() => booked(day), { timeout: 10_000 }).toBe(before.day + 1);
    expect(await booked(clinic)).toBe(before.clinic + 1);
    expect(await booked(pool)).toBe(before.pool + 1);
    expect(await width(day)).not.toBe(before.width);
    await shot(page, "operator-03-after-booking");

    // A crowd arrives: the queue depth rises, then drains at the admission rate.
    const depth = async () => Number((await page.locator("#queue-depth").textContent()).replace(/\D/g, ""));
    await server.crowd(20, { year: 1992, month: 7, day: 14 });
    await expect.poll(depth, { timeout: 10_000 }).toBeGreaterThan(0);
    await shot(page, "operator-04-queue");
    await expect.poll(depth, { timeout: 60_000 }).toBe(0);
    // The crowd went through at the measured admission rate (2 a second configured).
    const measured = async () => Number((await page.locator("#rate-measured").textContent()).replace(",", "."));
    expect(await measured()).toBeGreaterThan(0);

    // Point 8: today's share first (the change window's pool now): what citizens are shown,
    // what is left per region and clinic, 마감 when nothing is.
    const adminStatus = async () => (await fetch(server.base + "/admin/status", { headers: { Authorization: `Bearer ${server.adminToken}` } })).json();
    await server.admin("/admin/supply", { clinic_id: "seoul-sejong-01", name: "세종로의원", region: "서울", address: "서울 종로구 세종대로 175", date: "2021-09-02", doses: 1 });
    await server.book({ birth: { year: 1994, month: 2, day: 11 }, serial: 62000, clinic_id: "seoul-sejong-01", date: "2021-09-02" });
    await expect(server.book({ birth: { year: 1994, month: 2, day: 12 }, serial: 62001, clinic_id: "seoul-sejong-01", date: "2021-09-02" }))
      .rejects.toThrow(/409.*sold_out/);
    await expect(page.locator("#today-share")).toHaveAttribute("data-share", "pool");
    const small = page.locator('#today-clinics-body tr[data-clinic="seoul-sejong-01"]');
    await expect(small).toHaveAttribute("data-sold-out", "true", { timeout: 10_000 });
    await expect(small).toContainText("마감");
    await expect(small).toContainText("서울 종로구 세종대로 175");
    await expect(page.locator('#today-regions-body tr[data-region="서울"]')).toContainText("서울");
    const top = (sel) => page.locator(sel).evaluate((e) => e.getBoundingClientRect().top);
    expect(await top("#h-today")).toBeLessThan(await top("#days-table"));
    // Refusals by code: the sold-out booking, as this gateway answered it and as the log has it.
    const soldOut = page.locator('#refusals-body tr[data-code="sold_out"]');
    await expect.poll(async () => Number(await soldOut.getAttribute("data-answered")), { timeout: 10_000 }).toBeGreaterThanOrEqual(1);
    expect(Number(await soldOut.getAttribute("data-recorded"))).toBeGreaterThanOrEqual(1);
    // The graph has data: this minute's sample at least, with the crowd's admissions as a bar.
    await expect.poll(async () => Number(await page.locator("#graph-svg").getAttribute("data-samples")), { timeout: 10_000 }).toBeGreaterThan(0);
    expect(await page.locator("#graph-svg rect.graph-bar").count()).toBeGreaterThan(0);
    expect((await adminStatus()).samples.some((x) => x.admitted > 0)).toBe(true);
    // One clock, the server's: the server's time is shown, and every time of day on the page
    // is the server's (now, or in the graph's last hour), none the browser's.
    await oneClock(page, await adminStatus());
    await bothLanguages(page, { point: "point8-operator", size: "phone", what: "today", check: async () => {
      await expect(page.locator("#h-today")).toHaveText("Today's share (what citizens see)");
      await expect(small).toContainText("Sold out");
      await oneClock(page, await adminStatus());
    } });

    // Pause: a crowd arrives and nobody is admitted; the control is recorded with the operator.
    await page.locator("#pause-toggle").click();
    await expect(page.locator("#controls")).toHaveAttribute("data-paused", "true");
    await expect(page.locator("#control-done")).toContainText("입장 일시정지");
    const paused = await adminStatus();
    expect(paused.admissions.paused).toBe(true);
    expect(paused.admissions.operator).toBeTruthy();
    await server.crowd(6, { year: 1992, month: 7, day: 24 });
    await expect.poll(depth, { timeout: 10_000 }).toBe(6);
    await new Promise((r) => setTimeout(r, 3000)); // two a second would have admitted them all
    expect((await adminStatus()).admitted_total).toBe(paused.admitted_total);
    expect(await depth()).toBe(6);
    await bothLanguages(page, { point: "point8-operator", size: "phone", what: "paused", check: async () => {
      await expect(page.locator("#control-done")).toContainText(/paused/i);
    } });
    // The rate: a bad one is refused before it is sent; a good one is recorded.
    await page.locator("#rate-input").fill("-5");
    await page.locator("#rate-submit").click();
    await expect(page.locator("#rate-err")).toBeVisible();
    await page.locator("#rate-input").fill("600");
    await page.locator("#rate-submit").click();
    await expect(page.locator("#admissions-state")).toContainText("600");
    expect((await adminStatus()).admissions.admit_per_min).toBe(600);
    // Resume: the queue drains (at 600 a minute).
    await page.locator("#pause-toggle").click();
    await expect(page.locator("#controls")).toHaveAttribute("data-paused", "false");
    await expect.poll(depth, { timeout: 30_000 }).toBe(0);
    // A provider marked down from the page, then up again.
    const kakao = page.locator('#providers li[data-method="kakao"]');
    await kakao.locator("button").click();
    await expect(kakao).toHaveAttribute("data-outage", "true");
    await expect(page.locator('#lights li[data-method="kakao"]')).toHaveAttribute("data-level", "grey");
    await kakao.locator("button").click();
    await expect(kakao).toHaveAttribute("data-outage", "false");
    await shot(page, "point8-operator-phone-ko-resumed");

    // The English view, on a desktop-wide window.
    await page.locator("#lang-toggle").click();
    await expect(page.locator("#h-status")).toHaveText("Live operations");
    await page.setViewportSize(DESKTOP);
    await shot(page, "operator-05-desktop-en");
    // The controls on a desktop: paused, in both languages, then resumed.
    await page.locator("#pause-toggle").click();
    await expect(page.locator("#controls")).toHaveAttribute("data-paused", "true");
    await bothLanguages(page, { point: "point8-operator", size: "desktop", what: "paused", check: async () => {
      await expect(page.locator("#control-done")).toContainText("입장 일시정지");
    } });
    await page.locator("#pause-toggle").click();
    await expect(page.locator("#controls")).toHaveAttribute("data-paused", "false");
    await expect(page.locator("#h-today")).toHaveText("Today's share (what citizens see)");
    await expect(page.locator('#today-clinics-body tr[data-clinic="seoul-sejong-01"]')).toContainText("Sold out");
    await oneClock(page, await adminStatus());
    await bothLanguages(page, { point: "point8-operator", size: "desktop", what: "today", check: async () => {
      await expect(page.locator("#h-today")).toHaveText(/오늘/);
      await expect(page.locator('#today-clinics-body tr[data-clinic="seoul-sejong-01"]')).toContainText("마감");
      await oneClock(page, await adminStatus());
    } });

    // Forgetting the token stops the data calls and asks again.
    await page.locator("#logout").click();
    await expect(page.locator("#view-login")).toBeVisible();
    expect(await page.evaluate(() => sessionStorage.getItem("yeyak.admin"))).toBeNull();
    expect(pageErrors).toEqual([]);
    await context.close();
  });
});
