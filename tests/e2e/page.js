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

module.exports = { ARTIFACTS, PHONE, DESKTOP, shot, accessible, fillVerification, pageErrorsOf, placesAskedBy };
