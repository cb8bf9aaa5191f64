// `yeyak simulate`'s report in headless Chromium: a small campaign's report.html, opened from
// disk, shows its six plots, each an SVG with marks, and asks for nothing outside the page.
// A screenshot of the whole page is kept in target/e2e-artifacts/simulate-report.png.
const { test, expect } = require("@playwright/test");
const { execFileSync } = require("child_process");
const fs = require("fs");
const path = require("path");

const { ARTIFACTS } = require("./page");
const PLOTS = ["queue", "waits", "eta", "verifications", "lights", "fill"];

test("the simulation's report shows every plot", async ({ page }) => {
  const out = path.join(ARTIFACTS, "simulate");
  fs.rmSync(out, { recursive: true, force: true });
  execFileSync(process.env.YEYAK_BIN, ["simulate", "--people", "3000", "--out", out, "--quiet"], {
    stdio: "inherit",
    timeout: 60_000,
  });
  const outside = [];
  page.on("request", (request) => {
    if (!request.url().startsWith("file:")) outside.push(request.url());
  });
  await page.setViewportSize({ width: 900, height: 1200 });
  await page.goto("file://" + path.join(out, "report.html"));
  await expect(page.locator("h1")).toHaveText("yeyak simulate");
  for (const plot of PLOTS) {
    const svg = page.locator(`#plot-${plot} svg`);
    await expect(svg).toBeVisible();
    const box = await svg.boundingBox();
    expect(box.width, `plot ${plot} is drawn`).toBeGreaterThan(300);
    const marks = await svg.locator("polyline, rect, circle").count();
    expect(marks, `plot ${plot} has marks`).toBeGreaterThan(10);
  }
  expect(outside).toEqual([]);
  await page.screenshot({ path: path.join(ARTIFACTS, "simulate-report.png"), fullPage: true });
});
