/*
 * page.js: the Chromium driver of tests/bench/page.sh. Opens
 * http://127.0.0.1:WS_PORT/index.html?build=N in a fresh page RUNS times for each
 * "N:LINES" of BUILDS and measures, from the start of navigation (performance.now() in
 * the page), when the first line of the log is on screen and when all LINES are in and
 * the log is live. Prints "first_N MS", "all_N MS" (medians), "firsts_N a/b/c" and
 * "alls_N a/b/c" (every run), and "# ..." notes.
 */
"use strict";
const path = require("path");
const { chromium } = require(path.join(process.env.ROOT, "node_modules", "playwright-core"));

const URL = `http://127.0.0.1:${process.env.WS_PORT}/index.html`;
const RUNS = Number(process.env.RUNS) || 3;
const median = (a) => a.slice().sort((x, y) => x - y)[Math.floor(a.length / 2)];

(async () => {
  const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-extensions"] });
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 960 } });
  for (const spec of process.env.BUILDS.split(" ")) {
    const [id, lines] = spec.split(":").map(Number);
    const firsts = [], alls = [];
    for (let r = 0; r < RUNS; r++) {
      const page = await ctx.newPage();
      await page.goto(`${URL}?build=${id}`);
      const first = await page.waitForFunction(() => {
        const row = document.querySelector("#log-lines .ll");
        return row && row.getBoundingClientRect().height > 0 && performance.now();
      }, null, { polling: "raf", timeout: 60000 });
      const all = await page.waitForFunction((n) => {
        const log = document.getElementById("log");
        return log.getAttribute("data-live") === "true" && Number(log.getAttribute("data-lines")) >= n &&
          document.querySelector("#log-lines .ll") && performance.now();
      }, lines, { polling: "raf", timeout: 120000 });
      firsts.push(Math.round(await first.jsonValue()));
      alls.push(Math.round(await all.jsonValue()));
      const shown = await page.getAttribute("#log", "data-lines");
      if (Number(shown) !== lines) console.log(`# build ${id}: the page shows ${shown} lines, the file has ${lines}`);
      await page.close();
    }
    console.log(`first_${id} ${median(firsts)}`);
    console.log(`all_${id} ${median(alls)}`);
    console.log(`firsts_${id} ${firsts.join("/")} ms`);
    console.log(`alls_${id} ${alls.join("/")} ms`);
  }
  await browser.close();
})().catch((e) => { console.log("# page bench failed: " + (e && e.stack || e)); process.exit(1); });
