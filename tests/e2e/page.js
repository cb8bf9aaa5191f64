// What the page specs share: where screenshots go, the two screen sizes, and the checks every
// spec makes on a page (axe-core, uncaught errors, the places it asks for).
const { expect } = require("@playwright/test");
const { AxeBuilder } = require("@axe-core/playwright");
const path = require("path");

const ARTIFACTS = process.env.E2E_ARTIFACTS || path.resolve(__dirname, "../../target/e2e-artifacts");
const PHONE = { width: 360, height: 780 };
const DESKTOP = { width: 1280, height: 900 };

const shot = (page, name) => page.screenshot({ path: path.join(ARTIFACTS, name + ".png"), fullPage: true });

// axe-core's WCAG 2.1 A/AA rules on what is on screen: labels, names, contrast, roles.
async function accessible(page, where) {
  const result = await new AxeBuilder({ page }).withTags(["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]).analyze();
  const found = result.violations.map((v) => `${where}: ${v.id} (${v.impact}) at ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
  expect(found).toEqual([]);
}

// Fills the verification form (name, resident registration number "YYMMDD-SNNNNNN") and sends it.
async function fillVerification(page, name, rid) {
  const [front, back] = rid.split("-");
  await page.getByLabel(/^(이름|Name)$/).fill(name);
  await page.locator("#rid-front").fill(front);
  await page.locator("#rid-back").fill(back);
  await page.locator("#verify-submit").click();
}

// The page's uncaught errors, as they happen.
function pageErrorsOf(page) {
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  return errors;
}

// The places in the queue (POST /v1/queue) the page asks for, as it asks.
function placesAskedBy(page) {
  const asked = [];
  page.on("request", (r) => {
    if (r.method() === "POST" && new URL(r.url()).pathname === "/v1/queue") asked.push(r.url());
  });
  return asked;
}

// Issue 15's points, numbered as the screenshots are named (`point<N>-<size>-<language>-<what>`):
// 1 the day before the queue, 2 the live waiting room, 3 the honest ETA, 4 the admission's
// countdown, 5 only what can be done, 6 numbers people can use (code, region, address), 7 shared
// computers, 8 the operator page.

// Data the operators registered in Korean (clinic names, road addresses), the people's names the
// specs type and the operator's: shown as given in either language. Any other Korean on an English page, or a
// word of English on the Korean one, is a text the page forgot to translate.
const GIVEN_AS_IS = [
  "종로중앙의원", "해운대시민병원", "세종로의원",
  "서울 종로구 종로 1", "부산 해운대구 해운대로 264", "서울 종로구 세종대로 175",
  "김민준", "정하은", "한지우", "이서준", "박영수",
  // the operator's name, as the admin token's holder is recorded
  /\badmin\b/g,
];
// Words that are the same in Korean text: the project's name, names of providers.
const ENGLISH_IN_KOREAN = new Set(["yeyak", "PASS", "i-PIN", "KST", "OK", "ID"]);

// The visible text of the page, one entry per text node, without the data given as is.
async function visibleTexts(page) {
  const texts = await page.evaluate(() => {
    const out = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      const el = n.parentElement;
      if (!el || !n.textContent.trim() || el.closest("script, style, [hidden], .visually-hidden, .sr-only")) continue;
      // Error codes are shown as they are, for support calls, in either language; a text marked
      // as another language (the toggle's "English" / "한국어") is in that one.
      if (el.closest("code, .code") || el.closest("[lang]") !== document.documentElement) continue;
      const box = el.getBoundingClientRect();
      if (box.width === 0 && box.height === 0) continue;
      const style = getComputedStyle(el);
      if (style.visibility === "hidden" || style.display === "none") continue;
      out.push(n.textContent.trim());
    }
    return out;
  });
  return texts.map((t) => GIVEN_AS_IS.reduce((s, given) => (given instanceof RegExp ? s.replace(given, "") : s.split(given).join("")), t));
}

// Every text on screen is in `lang`: no Hangul left on the English page, no English word (a
// letter then two or more small ones, outside ENGLISH_IN_KOREAN: not an id nor a booking code)
// on the Korean one.
async function allIn(page, lang) {
  const texts = await visibleTexts(page);
  const wrong = lang === "en"
    ? texts.filter((t) => /[\u3131-\u318e\uac00-\ud7a3]/.test(t))
    : texts.filter((t) => (t.match(/(?<![\w-])[A-Za-z][a-z]{2,}(?![\w-])/g) || []).some((w) => !ENGLISH_IN_KOREAN.has(w)));
  expect(wrong, `text not in ${lang}`).toEqual([]);
}

// The screen as it is now, in both languages: a screenshot of each
// (`${point}-${size}-${lang}-${what}`), axe-core clean in each, every text in its language,
// and `check(lang)` in the other one; then back to the first language.
async function bothLanguages(page, { point, size, what, check }) {
  const first = await page.locator("html").getAttribute("lang");
  const other = first === "ko" ? "en" : "ko";
  for (const lang of [first, other]) {
    if (lang === other) await switchTo(page, other);
    await allIn(page, lang);
    if (lang === other && check) await check(lang);
    await shot(page, `${point}-${size}-${lang}-${what}`);
    await accessible(page, `${point} ${what} (${size}, ${lang})`);
  }
  await switchTo(page, first);
  await allIn(page, first);
}

async function switchTo(page, lang) {
  await page.locator("#lang-toggle").click();
  await expect(page.locator("html")).toHaveAttribute("lang", lang);
}

// Nothing of the person in localStorage: the language at most.
async function onlyTheLanguageKept(page) {
  const keys = await page.evaluate(() => Object.keys(localStorage));
  expect(keys.filter((k) => k !== "yeyak.lang"), "localStorage keeps more than the language").toEqual([]);
}

module.exports = {
  ARTIFACTS, PHONE, DESKTOP, shot, accessible, fillVerification, pageErrorsOf, placesAskedBy,
  bothLanguages, allIn, onlyTheLanguageKept,
};
