// Issue 15, points 1 and 7, in headless Chromium against a real `yeyak serve` of its own: the
// first page says whose booking day it is; a person whose day it is not, or who is outside the
// age group, is told when (or why not) right after verification and never queues (the server
// refuses the place too); "Finish" (마치기) forgets everything on a shared computer. At 360 px and
// on a desktop, each screen in both languages (page.js `bothLanguages`); screenshots named after
// the point in target/e2e-artifacts/.
const { test, expect } = require("@playwright/test");
const path = require("path");
const { startServer, residentId } = require("./server");
const { ARTIFACTS, PHONE, DESKTOP, shot, accessible, fillVerification, pageErrorsOf, placesAskedBy, bothLanguages, onlyTheLanguageKept } = require("./page");


// Digit 9's booking day: 2021-08-09 20:00 until 2021-08-10 18:00 (KST).
const BOOKING_DAY_9 = "2021-08-09T21:00:00+09:00";

let server;

test.describe.serial("before the queue", () => {
  test.beforeAll(async () => {
    server = await startServer({ clock: BOOKING_DAY_9, logFile: path.join(ARTIFACTS, "server-booking-day.log") });
  });

  test.afterAll(async () => {
    if (server) await server.stop();
  });

  async function verify(page, name, rid) {
    await page.locator("#method-next").click();
    await expect(page.locator("#view-verify")).toBeVisible();
    await fillVerification(page, name, rid);
  }

  // The page's session token; what the server says to it asking for a place in the queue.
  async function askForAPlace(page) {
    const token = await page.evaluate(() => JSON.parse(sessionStorage.getItem("yeyak.state.v1")).session.token);
    const res = await fetch(server.base + "/v1/queue", { method: "POST", headers: { Authorization: `Bearer ${token}` } });
    const mine = await fetch(server.base + "/v1/queue/me", { headers: { Authorization: `Bearer ${token}` } });
    return { status: res.status, body: await res.json(), mine: mine.status };
  }

  // Nothing of the person is left: no token, ticket or reservation, in either storage.
  async function nothingKept(page) {
    const kept = await page.evaluate(() => ({
      flow: JSON.parse(sessionStorage.getItem("yeyak.state.v1") || "{}"),
      device: sessionStorage.getItem("yeyak.device"),
    }));
    for (const key of ["session", "admission", "ticket", "reservation", "booking"]) expect(kept.flow[key] ?? null, key).toBeNull();
    expect(kept.device).toBeNull();
    await onlyTheLanguageKept(page);
  }

  test("phone, Korean: today's digit, and a person whose day is 13 August is told so and not queued", async ({ browser }) => {
    const context = await browser.newContext({ viewport: PHONE, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    const page = await context.newPage();
    const pageErrors = pageErrorsOf(page);
    // The page itself never asks for a place for someone who may not book now.
    const placesAsked = placesAskedBy(page);

    await page.goto(server.base + "/");
    await expect(page.locator("html")).toHaveAttribute("lang", "ko");
    await expect(page.locator("#today")).toBeVisible();
    await expect(page.locator("#today-digit")).toHaveText("9");
    await expect(page.locator("#today-who")).toHaveText("생년월일 끝자리 9");
    await expect(page.locator("#today-when")).toHaveText(/8월 9일 \(월\) 20시부터 8월 10일 \(화\) 18시까지 \(한국 시간\)/);
    await expect(page.locator("#method-list .method").first()).toBeVisible();
    await bothLanguages(page, { point: "point1", size: "phone", what: "today", check: async () => {
      await expect(page.locator("#today-who")).toHaveText("birth dates ending in 9");
      await expect(page.locator("#today-when")).toHaveText("from Mon 9 August, 20:00 until Tue 10 August, 18:00 (Korea time)");
    } });

    await verify(page, "이서준", residentId(1990, 5, 13, 31001));
    await expect(page.locator("#view-notyet")).toBeVisible();
    await expect(page.locator("#h-notyet")).toHaveText("아직 예약할 수 없습니다");
    await expect(page.locator("#notyet-when")).toHaveText("8월 13일 (금) 20시 (한국 시간)");
    await expect(page.locator("#view-queue")).toBeHidden();
    // The page offers no way into the queue, and the server would give none.
    await expect(page.locator("#view-notyet button")).toHaveCount(1);
    await expect(page.locator("#notyet-finish")).toHaveText("마치기");
    const place = await askForAPlace(page);
    expect([place.status, place.body.error, place.mine]).toEqual([403, "not_your_booking_day", 404]);
    expect(place.body.retry_after_s).toBeGreaterThan(3 * 86_400);
    await bothLanguages(page, { point: "point1", size: "phone", what: "not-your-day", check: async () => {
      await expect(page.locator("#h-notyet")).toHaveText("You cannot book yet");
      await expect(page.locator("#notyet-when")).toHaveText("Fri 13 August, 20:00 (Korea time)");
      await expect(page.locator("#notyet-finish")).toHaveText("Finish");
    } });

    // Point 7: finishing forgets the session (and everything else), and starts over.
    await page.locator("#notyet-finish").click();
    await expect(page.locator("#view-method")).toBeVisible();
    await expect(page.locator("#alert")).toContainText("모두 지웠습니다");
    await nothingKept(page);
    await page.reload();
    await expect(page.locator("#view-method")).toBeVisible();
    await nothingKept(page);

    // Someone outside the age group, on the day of their digit: why not, and no queue.
    await verify(page, "박영수", residentId(1960, 5, 19, 31002));
    await expect(page.locator("#view-notyet")).toBeVisible();
    await expect(page.locator("#h-notyet")).toHaveText("이번 사전예약 대상이 아닙니다");
    await expect(page.locator("#notyet-text")).toHaveText("이번 사전예약은 1972년부터 2003년 사이에 태어난 분이 대상입니다.");
    await expect(page.locator("#notyet-when-box")).toBeHidden();
    expect((await askForAPlace(page)).body.error).toBe("not_eligible");
    await bothLanguages(page, { point: "point1", size: "phone", what: "not-eligible", check: async () => {
      await expect(page.locator("#h-notyet")).toHaveText("This round is not for you");
      await expect(page.locator("#notyet-text")).toHaveText("This pre-reservation is for people born from 1972 to 2003.");
    } });
    await page.locator("#finish").click();
    await expect(page.locator("#view-method")).toBeVisible();
    await nothingKept(page);
    await bothLanguages(page, { point: "point7", size: "phone", what: "finished", check: async () => {
      await expect(page.locator("#alert")).toContainText("has been forgotten");
    } });

    expect(placesAsked).toEqual([]);
    expect(pageErrors).toEqual([]);
    await context.close();
  });

  test("desktop, English: today's digit, the age group, the day and hour of a later booking day", async ({ browser }) => {
    // A browser in another time zone still shows Korea time: the page writes what the server said.
    const context = await browser.newContext({ viewport: DESKTOP, timezoneId: "America/New_York" });
    const page = await context.newPage();
    const pageErrors = pageErrorsOf(page);
    // The page itself never asks for a place for someone who may not book now.
    const placesAsked = placesAskedBy(page);

    await page.goto(server.base + "/");
    await expect(page.locator("#method-list .method").first()).toBeVisible();
    await page.locator("#lang-toggle").click();
    await expect(page.locator("html")).toHaveAttribute("lang", "en");
    await expect(page.locator("#today-who")).toHaveText("birth dates ending in 9");
    await expect(page.locator("#today-when")).toHaveText("from Mon 9 August, 20:00 until Tue 10 August, 18:00 (Korea time)");
    await bothLanguages(page, { point: "point1", size: "desktop", what: "today", check: async () => {
      await expect(page.locator("#today-who")).toHaveText("생년월일 끝자리 9");
      await expect(page.locator("#today-when")).toHaveText(/8월 9일 \(월\) 20시부터 8월 10일 \(화\) 18시까지 \(한국 시간\)/);
    } });

    await verify(page, "Min-ji Choi", residentId(1960, 1, 9, 32001, true));
    await expect(page.locator("#h-notyet")).toHaveText("This round is not for you");
    await expect(page.locator("#notyet-text")).toHaveText("This pre-reservation is for people born from 1972 to 2003.");
    expect((await askForAPlace(page)).body.error).toBe("not_eligible");
    await bothLanguages(page, { point: "point1", size: "desktop", what: "not-eligible", check: async () => {
      await expect(page.locator("#h-notyet")).toHaveText("이번 사전예약 대상이 아닙니다");
    } });
    await page.locator("#notyet-finish").click();
    await expect(page.locator("#view-method")).toBeVisible();
    await nothingKept(page);

    // Digit 0: 10 August from 20:00, Korea time, whatever this browser's time zone.
    await verify(page, "Ji-ho Han", residentId(1999, 12, 20, 32002));
    await expect(page.locator("#h-notyet")).toHaveText("You cannot book yet");
    await expect(page.locator("#notyet-when")).toHaveText("Tue 10 August, 20:00 (Korea time)");
    const place = await askForAPlace(page);
    expect([place.status, place.body.error]).toEqual([403, "not_your_booking_day"]);
    await bothLanguages(page, { point: "point1", size: "desktop", what: "not-your-day", check: async () => {
      await expect(page.locator("#notyet-when")).toHaveText("8월 10일 (화) 20시 (한국 시간)");
    } });

    // Point 7: Finish in the header forgets everything here too.
    await page.locator("#finish").click();
    await expect(page.locator("#view-method")).toBeVisible();
    await expect(page.locator("#alert")).toContainText("has been forgotten");
    await nothingKept(page);
    await bothLanguages(page, { point: "point7", size: "desktop", what: "finished", check: async () => {
      await expect(page.locator("#alert")).toContainText("모두 지웠습니다");
    } });
    expect(placesAsked).toEqual([]);
    expect(pageErrors).toEqual([]);
    await context.close();
  });
});
