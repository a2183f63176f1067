/*
 * screenshots.js: the Chromium side of tests/web/screenshots.sh. Opens build 1522 (its
 * coloured log) in a light and in a dark page, searches it, and shows the scheduled
 * writes, saving the pictures in docs/. Env: WS_PORT, MQTT_PORT, ROOT.
 */
"use strict";
const path = require("path");
const { execFileSync } = require("child_process");
const { chromium } = require(path.join(process.env.ROOT, "node_modules", "playwright-core"));

const URL = `http://127.0.0.1:${process.env.WS_PORT}/index.html?build=1522`;
const out = (f) => path.join(process.env.ROOT, "docs", f);

(async () => {
  const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"] });
  for (const scheme of ["light", "dark"]) {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, colorScheme: scheme });
    const page = await ctx.newPage();
    await page.goto(URL);
    await page.waitForSelector("#log[data-live=true]", { timeout: 15000 });
    await page.waitForSelector("#rej-list .rej", { timeout: 5000 });
    await page.waitForSelector("#writer-state[data-state=online]", { timeout: 5000 });
    for (let i = 4; i <= 9; i++)                  /* a few live events */
      execFileSync("mosquitto_pub", ["-p", process.env.MQTT_PORT, "-q", "2", "-t", "mosqlite/write/build_logs",
        "-m", JSON.stringify({ values: { build_id: 1523, line: `CC boot/stage${i % 3 + 1}/obj_${i}.o` } })]);
    await page.waitForTimeout(2500);              /* a status with the counters */
    await page.screenshot({ path: out(scheme === "light" ? "screenshot.png" : "screenshot-dark.png") });
    if (scheme === "light") {
      await page.fill("#find", "warning");
      await page.press("#find", "Enter");
      await page.check("#find-filter");
      await page.waitForTimeout(300);
      await page.$eval("#log-lines", (b) => { b.scrollTop = 0; });
      await page.waitForTimeout(300);
      await (await page.$("#log")).screenshot({ path: out("screenshot-search.png") });
      await page.waitForSelector("#sched-list tr", { timeout: 5000 });
      await (await page.$("#scheduled")).screenshot({ path: out("screenshot-scheduled.png") });
    }
    await ctx.close();
  }
  await browser.close();
  console.log("screenshots: docs/screenshot.png, docs/screenshot-dark.png, docs/screenshot-search.png, " +
    "docs/screenshot-scheduled.png");
})().catch((e) => { console.error("screenshots: " + (e && e.stack || e)); process.exit(1); });
