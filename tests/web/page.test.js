/*
 * page.test.js: the page in headless Debian Chromium (playwright-core), run by
 * tests/t_web.sh, which has started a real broker (serving web/ on WS_PORT) and the
 * real writer, and seeded builds 1408..1413 with 2,500 log lines for build 1413.
 * Prints "ok - ..." / "not ok - ..." per check. Asks t_web.sh to run a lib.sh helper by
 * printing "@@ NAME" and reading "done RC" on stdin. Data goes in with mosquitto_pub,
 * the truth comes out of the SQLite file with sqlite3.
 * Env: T, DB, MQTT_PORT, WS_PORT, ROOT, PREFIX_TOPIC, SCREENSHOT (optional path).
 */
"use strict";
const path = require("path");
const readline = require("readline");
const { execFileSync, spawn } = require("child_process");
const { chromium } = require(path.join(process.env.ROOT, "node_modules", "playwright-core"));

const { T, DB, MQTT_PORT, WS_PORT } = process.env;
const PREFIX = process.env.PREFIX_TOPIC || "mosqlite";
const URL = `http://127.0.0.1:${WS_PORT}/index.html`;
const BUILD = 1413;

/* ---- TAP-ish output, and the control channel to t_web.sh ---- */

function say(s) { process.stdout.write(s + "\n"); }
async function check(desc, fn) {
  try { await fn(); say("ok - " + desc); }
  catch (e) { say("not ok - " + desc + " (" + String(e && e.message || e).split("\n")[0] + ")"); }
}
function assert(cond, msg) { if (!cond) throw new Error(msg); }

const answers = [];
let waiting = null;
readline.createInterface({ input: process.stdin }).on("line", (l) => {
  if (waiting) { const w = waiting; waiting = null; w(l); } else answers.push(l);
});
function lib(cmd) {                       /* run a lib.sh helper in t_web.sh */
  say("@@ " + cmd);
  return new Promise((resolve) => {
    const take = (l) => resolve(Number(l.split(" ")[1]));
    if (answers.length) take(answers.shift()); else waiting = take;
  });
}

function pub(table, obj) {
  execFileSync("mosquitto_pub", ["-p", MQTT_PORT, "-q", "2", "-t", `${PREFIX}/write/${table}`,
    "-m", JSON.stringify(obj)]);
}
function sql(q) {
  return execFileSync("sqlite3", ["-cmd", ".timeout 5000", DB, q]).toString().trim();
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/* The log as the page shows it: [[id, text], ...]. */
function pageLog(page) {
  return page.$$eval("#log-lines .ll", (ns) =>
    ns.map((n) => [Number(n.getAttribute("data-id")), n.querySelector(".tx").textContent]));
}
/* The same from the database. */
function dbLog() {
  const out = execFileSync("sqlite3", ["-cmd", ".timeout 5000", "-json", DB,
    `SELECT id, line FROM build_logs WHERE build_id = ${BUILD} ORDER BY id`]).toString().trim();
  return (out ? JSON.parse(out) : []).map((r) => [r.id, r.line]);
}
function sameLog(got, want) {
  const ids = got.map((r) => r[0]);
  assert(new Set(ids).size === ids.length, "duplicate ids on the page");
  for (let i = 1; i < ids.length; i++) assert(ids[i] > ids[i - 1], `out of order at ${ids[i]}`);
  assert(got.length === want.length, `page has ${got.length} lines, database ${want.length}`);
  for (let i = 0; i < want.length; i++)
    assert(got[i][0] === want[i][0] && got[i][1] === want[i][1],
      `line ${i}: page [${got[i]}] database [${want[i]}]`);
}
async function waitLogCount(page, n, ms) {
  await page.waitForFunction((n) => document.querySelectorAll("#log-lines .ll").length >= n, n,
    { timeout: ms });
}

(async () => {
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
      "--disable-default-apps", "--disable-extensions", "--metrics-recording-only",
      "--no-default-browser-check", "--disable-domain-reliability", "--disable-breakpad",
      "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication"],
  });   /* launch() gives the browser a new temporary profile, removed at close */
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 960 } });
  const page = await ctx.newPage();
  const jsErrors = [];
  page.on("pageerror", (e) => jsErrors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") say("# console: " + m.text()); });
  /* a second page (phone) opens later: it must see the same data */

  await check("page loads from the broker's http_dir and connects over WebSockets", async () => {
    await page.goto(URL);
    await page.waitForSelector("#conn[data-state=connected]", { timeout: 10000 });
  });

  await check("writer status goes online, with counters", async () => {
    await page.waitForSelector("#writer-state[data-state=online]", { timeout: 5000 });
    await page.waitForFunction(() => /^\d+$/.test(document.getElementById("c-applied").textContent),
      null, { timeout: 5000 });
  });

  await check("recent builds load through the named query", async () => {
    await page.waitForSelector(`#builds-list tr[data-id="${BUILD}"]`, { timeout: 5000 });
    const ids = await page.$$eval("#builds-list tr", (ns) => ns.map((n) => Number(n.getAttribute("data-id"))));
    assert(JSON.stringify(ids) === "[1413,1412,1411,1410,1409,1408]", "builds shown: " + ids);
  });

  await check("a row published with mosquitto_pub appears within 2 s", async () => {
    const t0 = Date.now();
    pub("builds", { values: { id: 1414, name: "docs/site @5be01d2", status: "queued" } });
    await page.waitForFunction(() => Array.from(document.querySelectorAll("#ev-list .ev .v"))
      .some((v) => v.textContent === "docs/site @5be01d2"), null, { timeout: 2000 });
    const ms = Date.now() - t0;
    await page.waitForSelector('#builds-list tr[data-id="1414"]', { timeout: 500 });
    say(`# event shown ${ms} ms after mosquitto_pub started`);
  });

  /* Select build 1413 while more lines of it (and of 1412) are being written: the query
   * pages and the live events overlap; the page must show exactly the database's rows. */
  const more = spawn("sh", ["-c", `i=0; while [ $i -lt 240 ]; do i=$((i+1));
      echo "{\\"values\\":{\\"build_id\\":$((1412 + i % 2)),\\"line\\":\\"[ 9$((i/30))%] Linking module_$i\\"}}";
      [ $((i % 8)) = 0 ] && sleep 0.1; done |
      mosquitto_pub -p ${MQTT_PORT} -q 2 -t ${PREFIX}/write/build_logs -l`], { stdio: "inherit" });
  const moreDone = new Promise((r) => more.on("exit", r));

  await check("a build's existing lines load (3 query pages) and new ones stream in, in order, no duplicates", async () => {
    await page.click(`#builds-list tr[data-id="${BUILD}"]`);
    await page.waitForSelector("#log[data-live=true]", { timeout: 15000 });
    await moreDone;
    const want = Number(sql(`SELECT count(*) FROM build_logs WHERE build_id = ${BUILD}`));
    assert(want === 2620, "database has " + want + " lines of build 1413");
    await waitLogCount(page, want, 5000).catch(() => {});
    sameLog(await pageLog(page), dbLog());
  });

  await check("the log follows new lines at the bottom, and stops following when scrolled up", async () => {
    const atBottom = () => page.$eval("#log-lines", (b) => b.scrollHeight - b.scrollTop - b.clientHeight < 24);
    assert(await atBottom(), "log not scrolled to the bottom after loading");
    pub("build_logs", { values: { build_id: BUILD, line: "[100%] Linking C executable firmware.elf" } });
    await page.waitForFunction(() => {
      const l = document.querySelector("#log-lines .ll:last-child .tx");
      return l && l.textContent === "[100%] Linking C executable firmware.elf";
    }, null, { timeout: 2000 });
    assert(await atBottom(), "log did not follow the new line");
    await page.$eval("#log-lines", (b) => { b.scrollTop = 0; b.dispatchEvent(new Event("scroll")); });
    pub("build_logs", { values: { build_id: BUILD, line: "   text    data     bss     dec     hex filename" } });
    await page.waitForSelector("#log-jump:not([hidden])", { timeout: 2000 });
    assert(await page.$eval("#log-lines", (b) => b.scrollTop) === 0, "log scrolled while the reader was reading");
    await page.click("#log-jump");
    assert(await atBottom(), "jump button did not go to the bottom");
  });

  await check("a rejected request shows its error and payload", async () => {
    pub("build_logs", { values: { build_id: BUILD, lne: "typo in the column name" } });
    await page.waitForFunction(() => Array.from(document.querySelectorAll("#rej-list .rej")).some((r) =>
      /lne/.test(r.querySelector(".rej-error").textContent) &&
      r.querySelector(".rej-payload").textContent.includes('"lne"')), null, { timeout: 3000 });
    say("# rejection shown: " + await page.$eval("#rej-list .rej .rej-error", (e) => e.textContent));
  });

  pub("build_logs", { values: { build_id: BUILD, line: "   184312    2248   40960  227520   378c0 firmware.elf" } });
  pub("builds", { where: { id: 1412 }, op: "update", set: { status: "passed", finished_at: new Date().toISOString() } });
  await sleep(2500);   /* one status interval: the counters include the rejection */
  await check("desktop screenshot saved", async () => {
    const file = process.env.SCREENSHOT || path.join(T, "screenshot.png");
    await page.screenshot({ path: file });
    say("# screenshot: " + file);
  });

  await check("a commit of 150 lines (its event truncated at 100 rows) shows all 150", async () => {
    const ops = [];
    for (let i = 1; i <= 150; i++)
      ops.push({ op: "insert", values: { build_id: BUILD, line: `test ${i}/150 ... ok` } });
    pub("build_logs", { ops });
    await page.waitForFunction(() => {
      const l = document.querySelector("#log-lines .ll:last-child .tx");
      return l && l.textContent === "test 150/150 ... ok";
    }, null, { timeout: 5000 });
    sameLog(await pageLog(page), dbLog());
    const trunc = await page.$$eval("#ev-list .trunc", (ns) => ns.length);
    if (!trunc) say("# no truncated event was seen: the writer sent all 150 rows");
  });

  await check("a log line <img src=x onerror=...> stays text and runs nothing", async () => {
    const evil = '<img src=x onerror="window.__xss=1;document.title=\'pwned\'">';
    const evilName = "<b>bold</b><script>window.__xss=2</script>";
    pub("build_logs", { values: { build_id: BUILD, line: evil } });
    pub("builds", { values: { id: 1415, name: evilName, status: "queued" } });
    await page.waitForFunction((evil) => {
      const l = document.querySelector("#log-lines .ll:last-child .tx");
      return l && l.textContent === evil;
    }, evil, { timeout: 2000 });
    await page.waitForSelector('#builds-list tr[data-id="1415"]', { timeout: 2000 });
    await sleep(500);
    const r = await page.evaluate(() => ({
      xss: window.__xss, title: document.title,
      tags: document.querySelectorAll("#log-lines img, #ev-list img, #builds-list b, #builds-list script, #ev-list script, main img").length,
      name: document.querySelector('#builds-list tr[data-id="1415"] .name').textContent,
    }));
    assert(r.xss === undefined && r.title === "mosqlite", "script ran: " + JSON.stringify(r));
    assert(r.tags === 0, r.tags + " elements made from data");
    assert(r.name === evilName, "name shown as " + r.name);
  });

  await check("events: newest first, choose a table, pause and resume, row cap", async () => {
    await page.selectOption("#ev-table", "build_logs");      /* re-rendered from what is kept */
    const logIds = await page.$$eval("#ev-list .ev", (ns) =>
      ns.map((n) => n.getAttribute("data-table") === "build_logs" ? Number(n.querySelector(".v").textContent) : NaN));
    assert(logIds.length > 100, "only " + logIds.length + " build_logs events kept");
    for (let i = 1; i < logIds.length; i++)
      assert(logIds[i] < logIds[i - 1], `not newest first: ${logIds[i - 1]} then ${logIds[i]}`);
    await page.selectOption("#ev-table", "builds");
    let tables = await page.$$eval("#ev-list .ev", (ns) => ns.map((n) => n.getAttribute("data-table")));
    assert(tables.length > 0 && tables.every((t) => t === "builds"), "filter shows " + [...new Set(tables)]);
    const top = () => page.$eval("#ev-list .ev .v", (v) => v.textContent);   /* first value: the id */
    await page.click("#ev-pause");
    pub("builds", { values: { id: 1416, name: "firmware/main @b7710e4", status: "queued" } });
    await page.waitForFunction(() => /Resume \(1 new\)/.test(document.getElementById("ev-pause").textContent),
      null, { timeout: 2000 });
    assert(await top() !== "1416", "a row showed while paused");
    await page.click("#ev-pause");
    assert(await top() === "1416", "newest row not first after resume: " + await top());
    await page.fill("#ev-cap", "3");
    await page.dispatchEvent("#ev-cap", "change");
    await page.selectOption("#ev-table", "");
    const n = await page.$$eval("#ev-list .ev", (ns) => ns.length);
    assert(n === 3, n + " rows kept with a cap of 3");
    await page.fill("#ev-cap", "500");
    await page.dispatchEvent("#ev-cap", "change");
  });

  await check("phone width (and ?broker=): one column, nothing wider than the screen, same log", async () => {
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    const p = await phone.newPage();
    p.on("pageerror", (e) => jsErrors.push("phone: " + e));
    await p.goto(`${URL}?build=${BUILD}&broker=ws://localhost:${WS_PORT}/`);
    await p.waitForSelector("#log[data-live=true]", { timeout: 15000 });
    assert((await p.textContent("#broker")).startsWith(`ws://localhost:${WS_PORT}/`), "?broker= not used");
    const w = await p.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
    assert(w[0] <= w[1], `page is ${w[0]} px wide on a ${w[1]} px screen`);
    sameLog(await pageLog(p), dbLog());
    await p.screenshot({ path: path.join(T, "phone.png"), fullPage: true });
    await phone.close();
  });

  /* The page loses its connection while the writer goes on writing: the events of that
   * time never reach it, so on reconnecting it must ask for the rows after its last id. */
  await check("lines written while the page was disconnected appear after it reconnects, no gap", async () => {
    /* another client takes the page's client id: the broker drops the page */
    const id = await page.getAttribute("#conn", "data-client-id");
    const thief = spawn("mosquitto_sub", ["-p", MQTT_PORT, "-i", id, "-t", `${PREFIX}/none`], { stdio: "ignore" });
    try {
      await page.waitForSelector("#conn[data-state=reconnecting]", { timeout: 5000 });
      const before = Number(sql(`SELECT count(*) FROM build_logs WHERE build_id = ${BUILD}`));
      for (let i = 1; i <= 5; i++)
        pub("build_logs", { values: { build_id: BUILD, line: `written while the page was away ${i}/5` } });
      for (const end = Date.now() + 5000; Date.now() < end; await sleep(20))
        if (Number(sql(`SELECT count(*) FROM build_logs WHERE build_id = ${BUILD}`)) >= before + 5) break;
      if (await page.getAttribute("#conn", "data-state") === "connected")
        say("# the page was back before the lines were committed: the catch-up path was not exercised");
    } finally {
      thief.kill();
    }
    await page.waitForSelector("#conn[data-state=connected]", { timeout: 10000 });
    await page.waitForFunction(() => {
      const l = document.querySelector("#log-lines .ll:last-child .tx");
      return l && l.textContent === "written while the page was away 5/5";
    }, null, { timeout: 5000 });
    sameLog(await pageLog(page), dbLog());
  });

  /* A failure that is not the request's fault: another process holds the write lock.
   * The writer keeps the request, retries, and says so in its status. */
  await check("a locked database file shows the writer's error prominently, then it clears", async () => {
    const lock = spawn("sqlite3", [DB], { stdio: ["pipe", "pipe", "inherit"] });
    try {
      const held = new Promise((r) => lock.stdout.on("data", (d) => { if (/locked/.test(d)) r(); }));
      lock.stdin.write("BEGIN EXCLUSIVE;\nSELECT 'locked';\n");
      await held;
      pub("build_logs", { values: { build_id: BUILD, line: "written while the file was locked" } });
      await page.waitForSelector("#writer-error:not([hidden])", { timeout: 20000 });
      say("# writer error shown: " + await page.textContent("#writer-error-text"));
      await page.screenshot({ path: path.join(T, "writer-error.png") });
    } finally {
      lock.stdin.end("COMMIT;\n");
    }
    await page.waitForSelector("#writer-error", { state: "hidden", timeout: 20000 });
    await page.waitForFunction(() => {
      const l = document.querySelector("#log-lines .ll:last-child .tx");
      return l && l.textContent === "written while the file was locked";
    }, null, { timeout: 5000 });
  });

  await check("killing the writer shows offline (Last Will)", async () => {
    await lib("writer_kill");
    await page.waitForSelector("#writer-state[data-state=offline]", { timeout: 5000 });
  });

  /* Requests published while the writer is down wait in its broker session; the page
   * must show them once the writer is back (checked after the broker restart). */
  for (let i = 1; i <= 3; i++)
    pub("build_logs", { values: { build_id: BUILD, line: `retry ${i}/3: board 3 not answering` } });

  await check("the page shows its own connection dropping when the broker stops", async () => {
    assert(await lib("broker_stop") === 0, "broker_stop failed");
    await page.waitForSelector("#conn[data-state=reconnecting]", { timeout: 5000 });
  });

  await check("the page reconnects when the broker restarts, and the log goes on with no gap", async () => {
    assert(await lib("broker_start") === 0, "broker_start failed");
    await page.waitForSelector("#conn[data-state=connected]", { timeout: 15000 });
    assert(await lib("writer_start") === 0, "writer_start failed");
    await page.waitForSelector("#writer-state[data-state=online]", { timeout: 10000 });
    pub("build_logs", { values: { build_id: BUILD, line: "flashing firmware.elf to board 3" } });
    await page.waitForFunction(() => {
      const l = document.querySelector("#log-lines .ll:last-child .tx");
      return l && l.textContent === "flashing firmware.elf to board 3";
    }, null, { timeout: 3000 });
    sameLog(await pageLog(page), dbLog());
  });

  await check("no JavaScript errors on the page", async () => {
    assert(jsErrors.length === 0, jsErrors.join("; "));
  });

  await browser.close();
  process.exit(0);
})().catch((e) => { say("not ok - page test crashed: " + (e && e.stack || e)); process.exit(1); });
