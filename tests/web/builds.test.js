/*
 * builds.test.js: a build's attempts and an operator's cancel of a running build, in
 * headless Debian Chromium (playwright-core), run by tests/t_web.sh after act.test.js, on
 * the broker made from conf/secure/ (OPS_WS, its writer on OPS_DB). The builds are run by
 * the real build wrapper (bin/mosqlite-pub -- COMMAND), logged in as the producer builder.
 * Checks: a build run twice shows its latest attempt's log alone, the earlier one a choice
 * away; an operator (ops-web) cancels a running build from its log head: the command's
 * process is gone, the wrapper exits 143, the row says cancelled and the page shows it; a
 * build that ended before the cancel reached the writer is not cancelled, and the page
 * says so; a viewer (web) is offered no cancel. Asks t_web.sh for ops_writer_stop /
 * ops_writer_cont ("@@ NAME").
 */
"use strict";
const path = require("path");
const fs = require("fs");
const { execFileSync, spawn } = require("child_process");
const { chromium } = require(path.join(process.env.ROOT, "node_modules", "playwright-core"));

const { ROOT, T, OPS_DB, OPS_MQTT, OPS_WS, OPS_BPASS, OPS_WEBPASS, OPS_OPPASS } = process.env;
const PREFIX = process.env.PREFIX_TOPIC || "mosqlite";
const URL = `http://127.0.0.1:${OPS_WS}/index.html`;
const PUB = path.join(process.env.BIN || path.join(ROOT, "bin"), "mosqlite-pub");

function say(s) { process.stdout.write(s + "\n"); }
async function check(desc, fn) {
  try { await fn(); say("ok - " + desc); }
  catch (e) { say("not ok - " + desc + " (" + String(e && e.message || e).split("\n")[0] + ")"); }
}
function assert(cond, msg) { if (!cond) throw new Error(msg); }
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const readline = require("readline");
const answers = [];
let waiting = null;
readline.createInterface({ input: process.stdin }).on("line", (l) => {
  if (waiting) { const w = waiting; waiting = null; w(l); } else answers.push(l);
});
/* t_web.sh's helpers: "@@ NAME", answered "done RC". */
function lib(cmd) {
  say("@@ " + cmd);
  return new Promise((resolve) => {
    const take = (l) => resolve(Number(l.split(" ")[1]));
    if (answers.length) take(answers.shift()); else waiting = take;
  });
}
async function until(what, fn, ms) {
  for (const end = Date.now() + (ms || 10000); Date.now() < end; await sleep(100)) if (await fn()) return;
  throw new Error("timed out: " + what);
}
function sql(q) { return execFileSync("sqlite3", ["-cmd", ".timeout 5000", OPS_DB, q]).toString().trim(); }
function pub(topic, obj) {
  execFileSync("mosquitto_pub", ["-p", OPS_MQTT, "-u", "builder", "-P", OPS_BPASS, "-q", "2",
    "-t", `${PREFIX}/${topic}`, "-m", JSON.stringify(obj)]);
}
/* The build wrapper on build BUILD, as the producer builder: a promise of its exit status. */
function wrap(build, script) {
  const p = spawn(PUB, ["-p", OPS_MQTT, "-u", "builder", "-P", OPS_BPASS, "--no-tee", "--lines", "line",
    "--with", JSON.stringify({ build_id: build }), "build_logs", "--", "sh", "-c", script],
    { stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  p.stderr.on("data", (d) => { err += d; });
  return new Promise((resolve) => p.on("exit", (code, sig) => resolve({ code, sig, err })));
}
function alive(pid) { try { process.kill(pid, 0); } catch (e) { return false; }
  try { return !/^State:\s+Z/m.test(fs.readFileSync(`/proc/${pid}/status`, "utf8")); } catch (e) { return false; } }

(async () => {
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium", headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
      "--disable-default-apps", "--disable-extensions", "--no-default-browser-check", "--disable-breakpad"],
  });
  const jsErrors = [];
  async function open(user, pass, build) {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 960 } });
    const p = await ctx.newPage();
    p.on("pageerror", (e) => jsErrors.push(user + ": " + e));
    await p.goto(URL + "?build=" + build);
    await p.waitForSelector("#login:not([hidden])", { timeout: 10000 });
    await p.fill("#login-user", user);
    await p.fill("#login-pass", pass);
    await p.click("#login-go");
    await p.waitForSelector("#conn[data-state=connected]", { timeout: 10000 });
    return p;
  }
  const logText = (p) => p.evaluate(() => Array.from(document.querySelectorAll("#log-lines .ll .tx"))
    .map((n) => n.textContent).join("\n"));

  await check("a build run twice: the page shows the latest attempt's log alone, the earlier one a choice away", async () => {
    const a = await wrap(910, 'for i in 1 2 3; do echo "first run $i"; done; exit 1');
    const b = await wrap(910, 'echo "second run 1"; echo "second run 2"');
    assert(a.code === 1 && b.code === 0, `exit statuses ${a.code}, ${b.code}`);
    await until("both runs' lines stored", () => Number(sql("SELECT count(*) FROM build_logs WHERE build_id = 910")) === 5);
    const p = await open("web", OPS_WEBPASS, 910);
    await p.waitForSelector("#log[data-live=true][data-lines='2']", { timeout: 10000 });
    /* The count is set before the lines are drawn (at the next frame): wait for them. */
    await until("the latest attempt's lines drawn", async () => /second run 2/.test(await logText(p)), 5000).catch(() => {});
    let text = await logText(p);
    assert(/second run 1/.test(text) && /second run 2/.test(text) && !/first run/.test(text), "shown: " + text);
    await p.waitForSelector("#log-attempt:not([hidden])", { timeout: 5000 });
    const opts = await p.$$eval("#log-attempt option", (os) => os.map((o) => o.textContent + (o.selected ? " *" : "")));
    say("# attempts offered: " + JSON.stringify(opts));
    assert(opts.length === 2 && /^attempt 2 \(latest\).*\*$/.test(opts[0]) && /^attempt 1\b/.test(opts[1]), "options " + JSON.stringify(opts));
    assert(await p.textContent("#log-status") === "passed", "status badge " + await p.textContent("#log-status"));
    const first = await p.$eval("#log-attempt option:nth-child(2)", (o) => o.value);
    await p.selectOption("#log-attempt", first);
    await p.waitForSelector("#log[data-live=true][data-lines='3']", { timeout: 10000 });
    await until("attempt 1's lines drawn", async () => /first run 3/.test(await logText(p)), 5000).catch(() => {});
    text = await logText(p);
    assert(/first run 1/.test(text) && /first run 3/.test(text) && !/second run/.test(text), "attempt 1 shown: " + text);
    await p.context().close();
  });

  await check("an operator cancels a running build: the command is gone, the wrapper exits 143, the row and the page say cancelled", async () => {
    const pidFile = path.join(T, "web-cancel-911.pid");
    const run = wrap(911, `echo $$ > '${pidFile}'; echo started; exec sleep 300`);
    await until("build 911 running", () => sql("SELECT status FROM builds WHERE id = 911") === "running");
    await until("its first line", () => Number(sql("SELECT count(*) FROM build_logs WHERE build_id = 911")) === 1);
    const pid = Number(fs.readFileSync(pidFile, "utf8"));
    assert(alive(pid), "the command is not running");
    const viewer = await open("web", OPS_WEBPASS, 911);
    await viewer.waitForSelector("#log-status[data-state=running]", { timeout: 10000 });
    await sleep(500);
    assert(!(await viewer.isVisible("#log-cancel")), "a viewer is offered a cancel");
    await viewer.context().close();
    const p = await open("ops-web", OPS_OPPASS, 911);
    await p.waitForSelector("#role:not([hidden])", { timeout: 5000 });
    await p.waitForSelector("#log-cancel:not([hidden])", { timeout: 10000 });
    await p.click("#log-cancel");
    await p.waitForSelector("#log-cancel.armed", { timeout: 2000 });
    assert(sql("SELECT status FROM builds WHERE id = 911") === "running", "cancelled on the first click");
    await p.click("#log-cancel");
    await p.waitForSelector("#act-list li[data-kind=cancel_build][data-state=applied]", { timeout: 10000 });
    const r = await Promise.race([run, sleep(30000).then(() => null)]);
    if (!r) { process.kill(pid, "SIGKILL"); throw new Error("the wrapper went on after the cancel"); }
    say("# wrapper: exit " + r.code + "; " + r.err.trim().split("\n").pop());
    assert(r.code === 143, "the wrapper exited " + r.code + " " + r.sig);
    assert(!alive(pid), "the command " + pid + " is still running");
    await until("the row cancelled, with its end", () =>
      sql("SELECT status || ',' || exit_code || ',' || (finished_at IS NOT NULL) FROM builds WHERE id = 911") === "cancelled,143,1");
    await p.waitForSelector("#log-status[data-state=cancelled]", { timeout: 10000 });
    await p.waitForSelector("#log-cancel", { state: "hidden", timeout: 5000 });
    say("# " + await p.textContent("#act-list li[data-kind=cancel_build]"));
    await p.context().close();
  });

  await check("a build that ended before the cancel reached the writer is not cancelled, and the page says so", async () => {
    /* The row says running when the page shows it; then the build ends where the page does
     * not see it (the file written directly, no event), so the cancel reaches a build that
     * has ended: it matches no running row. */
    pub("write/builds", { values: { id: 912, name: "ends first", status: "running", attempt: 5 } });
    const p = await open("ops-web", OPS_OPPASS, 912);
    await p.waitForSelector("#log-cancel:not([hidden])", { timeout: 10000 })
      .catch((e) => { throw new Error("no cancel offered: " + e.message); });
    sql("UPDATE builds SET status = 'passed', exit_code = 0 WHERE id = 912");
    await p.click("#log-cancel");
    await p.click("#log-cancel");
    const li = await p.waitForSelector("#act-list li[data-kind=cancel_build][data-state=refused]", { timeout: 10000 })
      .catch(async (e) => { throw new Error("not refused: " + await p.textContent("#act-list") + " " + e.message); });
    const text = await li.textContent();
    say("# " + text);
    assert(/not running any more/.test(text), "shown: " + text);
    assert(sql("SELECT status FROM builds WHERE id = 912") === "passed", "the ended build was changed");
    await p.waitForSelector("#log-status[data-state=passed]", { timeout: 10000 })
      .catch(async (e) => { throw new Error("status shown " + await p.textContent("#log-status") + ": " + e.message); });
    await p.context().close();
  });

  await check("no JavaScript errors on the pages", async () => {
    assert(jsErrors.length === 0, jsErrors.join("; "));
  });

  await browser.close();
  process.exit(0);
})().catch((e) => { say("not ok - builds test crashed: " + (e && e.stack || e)); process.exit(1); });
