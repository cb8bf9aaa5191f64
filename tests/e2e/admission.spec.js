// Issue 15, point 4, in headless Chromium against a real `yeyak serve` of its own whose
// admissions last ADMISSION_TTL_S seconds instead of 10 minutes: the page counts the admission
// down (from the server's expires_in_s), and when it runs out says so and takes the person back
// to the queue in one click. At 360 px and on a desktop, each screen in both languages;
// screenshots named after the point in target/e2e-artifacts/. Point 5 too: after booking, before the change window,
// my reservation offers no cancel or change and says when they open.
const { test, expect } = require("@playwright/test");
const path = require("path");
const { startServer, residentId } = require("./server");
const { ARTIFACTS, PHONE, DESKTOP, shot, accessible, fillVerification, pageErrorsOf, placesAskedBy, bothLanguages, onlyTheLanguageKept } = require("./page");

const BOOKING_DAY_9 = "2021-08-09T21:00:00+09:00";
const ADMISSION_TTL_S = 15;

let server;

test.describe.serial("the admission's countdown", () => {
  test.beforeAll(async () => {
    server = await startServer({
      clock: BOOKING_DAY_9, logFile: path.join(ARTIFACTS, "server-admission.log"),
      extraArgs: ["--admission-ttl-s", String(ADMISSION_TTL_S)],
    });
    await server.admin("/admin/supply", { clinic_id: "seoul-jongno-01", name: "종로중앙의원", region: "서울", date: "2021-08-30", doses: 100 });
  });

  test.afterAll(async () => {
    if (server) await server.stop();
  });

  async function verify(page, name, rid) {
    await page.locator("#method-next").click();
    await fillVerification(page, name, rid);
  }

  // The seconds the timer shows (m:ss).
  const secondsLeft = async (page) => {
    const [m, s] = (await page.locator("#admission-left").textContent()).split(":").map(Number);
    return m * 60 + s;
  };

  async function admittedWithCountdown(page) {
    await expect(page.locator("#view-choose")).toBeVisible({ timeout: 60_000 });
    await expect(page.locator("#admission-timer")).toBeVisible();
    await expect(page.locator("#admission-left")).toHaveText(/^0:\d\d$/);
    const first = await secondsLeft(page);
    expect(first).toBeLessThanOrEqual(ADMISSION_TTL_S);
    expect(first).toBeGreaterThan(0);
    await expect.poll(() => secondsLeft(page), { timeout: 5_000 }).toBeLessThan(first);
  }

  test("phone, Korean: the countdown, its end, and back to the queue in one click", async ({ browser }) => {
    const context = await browser.newContext({ viewport: PHONE, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    const page = await context.newPage();
    const pageErrors = pageErrorsOf(page);
    await page.goto(server.base + "/");
    await expect(page.locator("#method-list .method").first()).toBeVisible();
    await verify(page, "정하은", residentId(1991, 2, 9, 41001, true));
    await admittedWithCountdown(page);
    await expect(page.locator("#admission-timer")).toContainText("남은 예약 시간");
    await bothLanguages(page, { point: "point4", size: "phone", what: "countdown", check: async () => {
      await expect(page.locator("#admission-timer")).toContainText("Time left to book");
      await expect(page.locator("#admission-left")).toHaveText(/^0:\d\d$/);
    } });

    // Left alone: the time runs out on the clinic choice.
    await expect(page.locator("#view-expired")).toBeVisible({ timeout: (ADMISSION_TTL_S + 5) * 1000 });
    await expect(page.locator("#h-expired")).toHaveText("예약 가능 시간이 지났습니다");
    await expect(page.locator("#admission-timer")).toBeHidden();
    await bothLanguages(page, { point: "point4", size: "phone", what: "expired", check: async () => {
      await expect(page.locator("#h-expired")).toHaveText("Your time to book has run out");
      await expect(page.locator("#expired-rejoin")).toHaveText("Join again");
    } });

    // One click: a new place, a new admission, a new countdown; then the booking goes through.
    await page.locator("#expired-rejoin").click();
    await admittedWithCountdown(page);
    await page.locator('label[data-clinic="seoul-jongno-01"]').click();
    await page.locator('label[data-date="2021-08-30"]').click();
    await page.locator("#choose-next").click();
    await expect(page.locator("#view-confirm")).toBeVisible();
    await expect(page.locator("#admission-timer")).toBeVisible();
    await page.locator("#confirm-submit").click();
    await expect(page.locator("#h-done")).toHaveText("예약이 완료되었습니다");
    await expect(page.locator("#admission-timer")).toBeHidden();

    // Point 5: before the change window, my reservation offers no cancel or change, and says
    // when they open.
    await page.locator("#done-manage").click();
    await expect(page.locator("#view-manage")).toBeVisible();
    await expect(page.locator("#manage-summary")).toContainText("종로중앙의원");
    await expect(page.locator("#manage-change-note")).toHaveText("예약 변경·취소는 8월 19일 (목) 20시부터 할 수 있습니다 (한국 시간).");
    await expect(page.locator("#manage-cancel")).toBeHidden();
    await expect(page.locator("#manage-change")).toBeHidden();
    await bothLanguages(page, { point: "point5", size: "phone", what: "manage", check: async () => {
      await expect(page.locator("#manage-change-note")).toHaveText("You can change or cancel your booking from Thu 19 August, 20:00 (Korea time).");
      await expect(page.locator("#manage-cancel")).toBeHidden();
      await expect(page.locator("#manage-change")).toBeHidden();
    } });
    await onlyTheLanguageKept(page);

    // Point 7: closing the tab forgets the person. A new tab of the same browser starts blank,
    // as another device, and knows nothing of the reservation.
    const device = await page.evaluate(() => sessionStorage.getItem("yeyak.device"));
    expect(device).toBeTruthy();
    await page.close();
    const next = await context.newPage();
    await next.goto(server.base + "/");
    await expect(next.locator("#view-method")).toBeVisible();
    const flow = await next.evaluate(() => JSON.parse(sessionStorage.getItem("yeyak.state.v1") || "{}"));
    for (const key of ["session", "admission", "ticket", "reservation", "booking", "choice"]) expect(flow[key] ?? null, key).toBeNull();
    expect(await next.evaluate(() => sessionStorage.getItem("yeyak.device"))).toBeNull();
    await onlyTheLanguageKept(next);
    await next.locator("#method-next").click();
    await expect(next.locator("#view-verify")).toBeVisible();
    expect(await next.evaluate(() => sessionStorage.getItem("yeyak.device"))).not.toBe(device);
    await shot(next, "point7-phone-ko-tab-closed");
    expect(pageErrors).toEqual([]);
    await context.close();
  });

  test("desktop, English: the countdown on the confirmation runs out before 'Confirm'", async ({ browser }) => {
    const context = await browser.newContext({ viewport: DESKTOP });
    const page = await context.newPage();
    const pageErrors = pageErrorsOf(page);
    await page.goto(server.base + "/");
    await expect(page.locator("#method-list .method").first()).toBeVisible();
    await page.locator("#lang-toggle").click();
    await verify(page, "Do-yun Kang", residentId(1988, 7, 29, 42001));
    await admittedWithCountdown(page);
    await page.locator('label[data-clinic="seoul-jongno-01"]').click();
    await page.locator('label[data-date="2021-08-30"]').click();
    await page.locator("#choose-next").click();
    await expect(page.locator("#view-confirm")).toBeVisible();
    await expect(page.locator("#admission-timer")).toContainText("Time left to book");
    await bothLanguages(page, { point: "point4", size: "desktop", what: "countdown", check: async () => {
      await expect(page.locator("#admission-timer")).toContainText("남은 예약 시간");
    } });

    await expect(page.locator("#view-expired")).toBeVisible({ timeout: (ADMISSION_TTL_S + 5) * 1000 });
    await expect(page.locator("#h-expired")).toHaveText("Your time to book has run out");
    await expect(page.locator("#expired-rejoin")).toHaveText("Join again");
    await bothLanguages(page, { point: "point4", size: "desktop", what: "expired", check: async () => {
      await expect(page.locator("#h-expired")).toHaveText("예약 가능 시간이 지났습니다");
    } });
    await page.locator("#expired-rejoin").click();
    await admittedWithCountdown(page);
    await page.locator('label[data-clinic="seoul-jongno-01"]').click();
    await page.locator('label[data-date="2021-08-30"]').click();
    await page.locator("#choose-next").click();
    await page.locator("#confirm-submit").click();
    await expect(page.locator("#h-done")).toHaveText("Your vaccination is booked");

    // Point 5, in English.
    await page.locator("#done-manage").click();
    await expect(page.locator("#view-manage")).toBeVisible();
    await expect(page.locator("#manage-change-note")).toHaveText("You can change or cancel your booking from Thu 19 August, 20:00 (Korea time).");
    await expect(page.locator("#manage-cancel")).toBeHidden();
    await expect(page.locator("#manage-change")).toBeHidden();
    await bothLanguages(page, { point: "point5", size: "desktop", what: "manage", check: async () => {
      await expect(page.locator("#manage-change-note")).toHaveText("예약 변경·취소는 8월 19일 (목) 20시부터 할 수 있습니다 (한국 시간).");
      await expect(page.locator("#manage-change")).toBeHidden();
    } });
    expect(pageErrors).toEqual([]);
    await context.close();
  });
});
