/*
 * page.js: the Chromium driver of tests/bench/page.sh. Opens
 * http://127.0.0.1:WS_PORT/index.html?build=N in a fresh page RUNS times for each
 * "N:LINES" of BUILDS and measures, from the start of navigation (performance.now() in
 * the page, checked at every frame by a script the page runs first), when the first line
 * of the log is on screen and when all LINES are in and the log is live. Prints
 * "first_N MS", "all_N MS" (medians), "firsts_N a/b/c" and "alls_N a/b/c" (every run),
 * and "# ..." notes. Then the same with the page's files
 * served by a plain web server in this process (answering at once) and the page
 * connecting to the broker with ?broker=: the same names prefixed "static_".
 */
"use strict";
const path = require("path");
const { chromium } = require(path.join(process.env.ROOT, "node_modules", "playwright-core"));

const http = require("http");
const fs = require("fs");

const URL = `http://127.0.0.1:${process.env.WS_PORT}/index.html`;

/* The same files from a plain web server that answers at once (STATIC=1 lines): the page
 * then connects to the broker with ?broker=. */
function staticServer() {
  const root = path.join(process.env.ROOT, "web");
  const types = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css" };
  const server = http.createServer((req, res) => {
    const file = path.join(root, path.normalize(decodeURIComponent(req.url.split("?")[0])));
    if (!file.startsWith(root + path.sep)) { res.writeHead(403); res.end(); return; }
    fs.readFile(file, (err, data) => {
      if (err) { res.writeHead(404); res.end(); return; }
      res.writeHead(200, { "Content-Type": types[path.extname(file)] || "application/octet-stream" });
      res.end(data);
    });
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}
const RUNS = Number(process.env.RUNS) || 3;
const median = (a) => a.slice().sort((x, y) => x - y)[Math.floor(a.length / 2)];

(async () => {
  const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-extensions"] });
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 960 } });
  const server = await staticServer();
  const urls = [["", (id) => `${URL}?build=${id}`],
    ["static_", (id) => `http://127.0.0.1:${server.address().port}/index.html?build=${id}` +
      `&broker=ws://127.0.0.1:${process.env.WS_PORT}/`]];
  for (const [label, url] of urls)
  for (const spec of process.env.BUILDS.split(" ")) {
    const [id, lines] = spec.split(":").map(Number);
    const firsts = [], alls = [];
    for (let r = 0; r < RUNS; r++) {
      const page = await ctx.newPage();
      /* Watched from inside the page, at every frame from its start: a watch the driver
       * installs after page.goto() returns would see the first screen late, by the time
       * of that round trip. */
      await page.addInitScript((n) => {
        const t = window.__bench = { first: 0, all: 0 };
        (function frame() {
          const row = document.querySelector("#log-lines .ll");
          if (!t.first && row && row.getBoundingClientRect().height > 0) t.first = performance.now();
          const log = document.getElementById("log");
          if (t.first && log && log.getAttribute("data-live") === "true" &&
              Number(log.getAttribute("data-lines")) >= n) t.all = performance.now();
          if (!t.all) requestAnimationFrame(frame);
        })();
      }, lines);
      await page.goto(url(id));
      await page.waitForFunction(() => window.__bench.all, null, { timeout: 120000 });
      const t = await page.evaluate(() => window.__bench);
      firsts.push(Math.round(t.first));
      alls.push(Math.round(t.all));
      const shown = await page.getAttribute("#log", "data-lines");
      if (Number(shown) !== lines) console.log(`# build ${id}: the page shows ${shown} lines, the file has ${lines}`);
      await page.close();
    }
    console.log(`${label}first_${id} ${median(firsts)}`);
    console.log(`${label}all_${id} ${median(alls)}`);
    console.log(`${label}firsts_${id} ${firsts.join("/")} ms`);
    console.log(`${label}alls_${id} ${alls.join("/")} ms`);
  }
  server.close();
  await browser.close();
})().catch((e) => { console.log("# page bench failed: " + (e && e.stack || e)); process.exit(1); });
