// Playwright for the yeyak page, with Debian's chromium (no browser is downloaded).
// scripts/e2e runs it; it needs YEYAK_BIN, the built `yeyak` binary.
const { defineConfig } = require("@playwright/test");
const path = require("path");

const artifacts = process.env.E2E_ARTIFACTS || path.resolve(__dirname, "../../target/e2e-artifacts");

module.exports = defineConfig({
  testDir: __dirname,
  testMatch: /.*\.spec\.js$/,
  // One server, one person after another: the specs share the server's clock.
  workers: 1,
  fullyParallel: false,
  retries: 0,
  timeout: 120_000,
  expect: { timeout: 20_000 },
  globalTimeout: 600_000,
  reporter: [["list"]],
  outputDir: path.join(artifacts, "test-results"),
  use: {
    browserName: "chromium",
    headless: true,
    locale: "ko-KR",
    timezoneId: "Asia/Seoul",
    launchOptions: { executablePath: process.env.CHROMIUM || "/usr/bin/chromium" },
    screenshot: "only-on-failure",
    trace: "retain-on-failure",
  },
});
