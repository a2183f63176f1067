/*
 * act.test.js: an operator's actions on the page, in headless Debian Chromium
 * (playwright-core), run by tests/t_web.sh after page.test.js. t_web.sh has started a
 * broker made from conf/secure/ (mosquitto.conf, acl, make-passwd.sh, make-certs.sh)
 * serving the page on OPS_WS, with a writer of its own on OPS_DB: users web (a viewer),
 * ops-web (the page's operator), builder (a producer) and ops (the admin role) in its
 * one password file (builder and ops use the MQTT listener OPS_MQTT). Also the open
 * broker of page.test.js (WS_PORT: mosquitto.conf.example, anonymous).
 * Checks: the open broker's page offers the actions; a viewer sees none and what it
 * publishes on PREFIX/admin or PREFIX/write does nothing; an operator pauses and resumes
 * the writer and cancels a scheduled write; an action survives a reload of the page
 * before its answer (the writer frozen meanwhile, so that both copies reach it), and the
 * broker being frozen then killed under it, and is applied once; a refusal shows the
 * writer's words.
 * Asks t_web.sh for ops_broker_stop / ops_broker_kill / ops_broker_start (the broker
 * frozen, killed, started) and ops_writer_stop / ops_writer_cont ("@@ NAME").
 */
"use strict";
const path = require("path");
const readline = require("readline");
const { execFileSync } = require("child_process");
const { chromium } = require(path.join(process.env.ROOT, "node_modules", "playwright-core"));

const { WS_PORT, OPS_DB, OPS_LOG, OPS_MQTT, OPS_WS, OPS_BPASS, OPS_APASS, OPS_WEBPASS, OPS_OPPASS } = process.env;
const PREFIX = process.env.PREFIX_TOPIC || "mosqlite";
const OPEN_URL = `http://127.0.0.1:${WS_PORT}/index.html`;
const URL = `http://127.0.0.1:${OPS_WS}/index.html`;

function say(s) { process.stdout.write(s + "\n"); }
async function check(desc, fn) {
  try { await fn(); say("ok - " + desc); }
  catch (e) { say("not ok - " + desc + " (" + String(e && e.message || e).split("\n")[0] + ")"); }
}
function assert(cond, msg) { if (!cond) throw new Error(msg); }
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const answers = [];
let waiting = null;
readline.createInterface({ input: process.stdin }).on("line", (l) => {
  if (waiting) { const w = waiting; waiting = null; w(l); } else answers.push(l);
});
function lib(cmd) {
  say("@@ " + cmd);
  return new Promise((resolve) => {
    const take = (l) => resolve(Number(l.split(" ")[1]));
    if (answers.length) take(answers.shift()); else waiting = take;
  });
}

function sql(q) { return execFileSync("sqlite3", ["-cmd", ".timeout 5000", OPS_DB, q]).toString().trim(); }
/* A write request as the producer builder, on the conf/secure broker's MQTT listener. */
function pub(topic, obj) {
  execFileSync("mosquitto_pub", ["-p", OPS_MQTT, "-u", "builder", "-P", OPS_BPASS, "-q", "2",
    "-t", `${PREFIX}/${topic}`, "-m", JSON.stringify(obj)]);
}
/* The writer's status, read as the admin role ops. */
function status() {
  const out = execFileSync("mosquitto_sub", ["-p", OPS_MQTT, "-u", "ops", "-P", OPS_APASS,
    "-t", `${PREFIX}/status`, "-C", "1", "-W", "3"]).toString().trim();
  return JSON.parse(out);
}
async function until(what, fn, ms) {
  for (const end = Date.now() + (ms || 10000); Date.now() < end; await sleep(100)) if (await fn()) return;
  throw new Error("timed out: " + what);
}
const scheduled = (id) => Number(sql(`SELECT count(*) FROM mosqlite_scheduled WHERE id = '${id}'`));
const lines = (text) => Number(sql(`SELECT count(*) FROM build_logs WHERE line = '${text}'`));
/* A write for later, as a producer would schedule it: its line is in build_logs once applied. */
function schedule(id, delayMs) {
  pub("write/build_logs", { id, delay_ms: delayMs, values: { build_id: 77, line: "scheduled " + id } });
}

(async () => {
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium", headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
      "--disable-default-apps", "--disable-extensions", "--no-default-browser-check", "--disable-breakpad"],
  });
  const jsErrors = [];
  async function open(ctx, user, pass, url) {
    const p = await ctx.newPage();
    p.on("pageerror", (e) => jsErrors.push(user + ": " + e));
    p.on("console", (m) => { if (m.type() === "error") say("# console (" + user + "): " + m.text()); });
    await p.goto(url || URL);
    await login(p, user, pass);
    return p;
  }
  async function login(p, user, pass) {
    await p.waitForSelector("#login:not([hidden])", { timeout: 10000 });
    await p.fill("#login-user", user);
    await p.fill("#login-pass", pass);
    await p.click("#login-go");
    await p.waitForSelector("#conn[data-state=connected]", { timeout: 10000 });
    await p.waitForSelector("#writer-state[data-state=online], #writer-state[data-state=paused]", { timeout: 10000 });
  }
  const row = (id) => `#sched-list tr[data-id="${id}"]`;
  async function cancelRow(p, id) {
    await p.waitForSelector(`${row(id)} button[data-cancel]`, { timeout: 10000 });
    await p.click(`${row(id)} button[data-cancel]`);
    await p.waitForSelector(`${row(id)} button.armed`, { timeout: 2000 });
    await p.click(`${row(id)} button[data-cancel]`);
  }
  const act = (kind, state) => `#act-list li[data-kind=${kind}]` + (state ? `[data-state=${state}]` : "");
  const due = [];    /* scheduled writes cancelled: [id, due ms]; never applied, checked at the end */

  await check("the open broker (make run: anonymous, one trusted machine) offers the actions", async () => {
    const c = await browser.newContext();
    const p = await c.newPage();
    p.on("pageerror", (e) => jsErrors.push("open: " + e));
    await p.goto(OPEN_URL);
    await p.waitForSelector("#writer-state[data-state=online]", { timeout: 10000 });
    await p.waitForSelector("#role:not([hidden])", { timeout: 5000 });
    assert(await p.isVisible("#act-pause"), "no pause on the open broker's page");
    await c.close();
  });

  const viewerCtx = await browser.newContext({ viewport: { width: 1280, height: 960 } });
  let viewer = null;
  await check("a viewer (web) sees no action: no pause, no resume, no cancel", async () => {
    schedule("act-view-1", 600000);
    await until("act-view-1 scheduled", () => scheduled("act-view-1") === 1);
    viewer = await open(viewerCtx, "web", OPS_WEBPASS);
    await viewer.waitForSelector(row("act-view-1"), { timeout: 10000 });
    await sleep(500);    /* the probe's SUBACK came with the subscriptions, long before */
    const seen = await viewer.evaluate(() => ({
      buttons: Array.from(document.querySelectorAll("button.act, button[data-cancel]")).filter((b) => b.offsetParent).length,
      cancels: document.querySelectorAll("#sched-list button").length,
      role: !document.getElementById("role").hidden,
      badge: document.getElementById("conn").textContent,
    }));
    assert(seen.buttons === 0 && seen.cancels === 0, "a viewer sees actions: " + JSON.stringify(seen));
    assert(!seen.role, "a viewer is shown as an operator");
    assert(seen.badge === "connected as web", "badge " + seen.badge);
  });

  await check("a viewer's own publish of a pause and a cancel does nothing (the broker's ACL drops it)", async () => {
    assert(viewer, "no viewer page");
    const before = status();
    /* From the viewer's browser, with its login and the page's own MQTT client. */
    const r = await viewer.evaluate(({ pass, prefix }) => new Promise((resolve) => {
      const id = "forged-" + Math.random().toString(16).slice(2);
      const c = window.mosqliteMqtt.connect(window.mosqliteBroker, { clientId: id, username: "web", password: pass,
        keepalive: 20, reconnectPeriod: 100000 });
      const got = [], acked = [];
      c.on("message", (t, m) => got.push(m));
      c.on("connect", () => {
        c.subscribe([{ topic: `${prefix}/reply/${id}/#`, qos: 1 }], () => {
          c.publish(`${prefix}/admin`, JSON.stringify({ cmd: "pause", id: "forged-pause", reply_to: `${prefix}/reply/${id}/p` }),
            { qos: 1 }, () => acked.push("admin"));
          c.publish(`${prefix}/write`, JSON.stringify({ id: "forged-cancel", cancel: "act-view-1", reply_to: `${prefix}/reply/${id}/c` }),
            { qos: 1 }, () => acked.push("write"));
        });
      });
      setTimeout(() => { c.end(); resolve({ got, acked }); }, 3000);
    }), { pass: OPS_WEBPASS, prefix: PREFIX });
    say("# forged by the viewer: broker acknowledged " + JSON.stringify(r.acked) + ", answers " + JSON.stringify(r.got));
    assert(r.acked.length === 2, "the broker did not take the viewer's publishes at all: " + JSON.stringify(r));
    /* Then a real write and an operator's command: both answered after what came before. */
    pub("write/build_logs", { id: "act-view-marker", values: { build_id: 77, line: "after the forged ones" } });
    await until("the marker applied", () => lines("after the forged ones") === 1);
    const st = execFileSync("sh", ["-c", `mosquitto_sub -p ${OPS_MQTT} -u ops -P ${OPS_APASS} -i act-stats -t '${PREFIX}/reply/act-stats/#' -C 1 -W 5 &
      sleep 0.5; mosquitto_pub -p ${OPS_MQTT} -u ops -P ${OPS_APASS} -q 1 -t ${PREFIX}/admin -m '{"cmd":"stats","reply_to":"${PREFIX}/reply/act-stats/1"}'; wait`]).toString();
    assert(/"paused":false/.test(st), "stats after the forged pause: " + st);
    assert(r.got.length === 0, "the viewer got answers: " + JSON.stringify(r.got));
    assert(scheduled("act-view-1") === 1, "the viewer's cancel cancelled");
    assert(status().cancelled === before.cancelled, "the writer counted a cancel");
    assert(!/paused by an admin command/.test(require("fs").readFileSync(OPS_LOG, "utf8")), "the writer was paused");
  });

  const opsCtx = await browser.newContext({ viewport: { width: 1280, height: 960 } });
  let ops = null;
  await check("an operator (ops-web) pauses the writer (the page says paused) and resumes it", async () => {
    ops = await open(opsCtx, "ops-web", OPS_OPPASS);
    await ops.waitForSelector("#role:not([hidden])", { timeout: 5000 });
    await ops.click("#act-pause");
    await ops.waitForSelector(act("pause", "applied"), { timeout: 10000 });
    await ops.waitForSelector("#writer-state[data-state=paused]", { timeout: 10000 });
    assert(status().paused === true, "the writer's status does not say paused");
    say("# " + await ops.textContent(act("pause")));
    await ops.waitForSelector("#act-resume:not([hidden])", { timeout: 5000 });
    await ops.click("#act-resume");
    await ops.waitForSelector(act("resume", "applied"), { timeout: 10000 });
    await ops.waitForSelector("#writer-state[data-state=online]", { timeout: 10000 });
    assert(status().paused === false, "the writer's status says paused after resume");
    assert(await ops.isVisible("#act-pause"), "no pause offered after resume");
  });

  await check("an operator cancels a scheduled write: gone from mosqlite_scheduled, never applied", async () => {
    assert(ops, "no operator page");
    const before = status();
    schedule("act-cancel-1", 20000);
    due.push(["act-cancel-1", Date.now() + 20000]);
    await cancelRow(ops, "act-cancel-1");
    await ops.waitForSelector(act("cancel", "applied"), { timeout: 10000 });
    await ops.waitForSelector(row("act-cancel-1"), { state: "detached", timeout: 10000 });
    assert(scheduled("act-cancel-1") === 0, "still in mosqlite_scheduled");
    assert(lines("scheduled act-cancel-1") === 0, "applied");
    await until("the cancel counted", () => status().cancelled === before.cancelled + 1);
    say("# " + await ops.textContent(act("cancel", "applied")));
  });

  await check("an action survives a reload before its answer, and is applied once", async () => {
    /* The writer frozen (SIGSTOP: still connected, the broker keeps what comes for it):
     * the cancel reaches the broker, unanswered; the page reloads, asks for the login
     * again and sends the cancel again under its id. Woken, the writer has both copies:
     * it applies the first (its answer goes to the reply topic of the page before the
     * reload) and answers the second "duplicate". */
    schedule("act-reload-1", 600000);
    await ops.waitForSelector(row("act-reload-1"), { timeout: 10000 });
    const before = status();
    assert(await lib("ops_writer_stop") === 0, "SIGSTOP the writer");
    let id;
    try {
      await cancelRow(ops, "act-reload-1");
      await ops.waitForSelector(act("cancel", "pending") + "[data-acked=true]", { timeout: 10000 });
      id = await ops.getAttribute(act("cancel", "pending"), "data-id");
      const sent = Number(await ops.getAttribute(act("cancel", "pending"), "data-sent"));
      await ops.reload();
      await login(ops, "ops-web", OPS_OPPASS);
      await ops.waitForFunction(({ id, sent }) => {
        const li = document.querySelector(`#act-list li[data-id="${id}"]`);
        return li && li.getAttribute("data-state") === "pending" && li.getAttribute("data-acked") === "true" &&
          Number(li.getAttribute("data-sent")) > sent;
      }, { id, sent }, { timeout: 10000 });
    } finally {
      assert(await lib("ops_writer_cont") === 0, "SIGCONT the writer");
    }
    const li = `#act-list li[data-id="${id}"]`;
    await ops.waitForSelector(li + "[data-state=applied]", { timeout: 15000 });
    await ops.waitForSelector(row("act-reload-1"), { state: "detached", timeout: 10000 });
    assert(scheduled("act-reload-1") === 0, "still scheduled");
    await until("the repeat answered", () => status().duplicates > before.duplicates)
      .catch((e) => { throw new Error(e.message + ": status " + JSON.stringify(status()) + " before " + JSON.stringify(before)); });
    const after = status(), text = await ops.textContent(li);
    assert(after.cancelled === before.cancelled + 1, `cancelled ${before.cancelled} -> ${after.cancelled}: want one cancel`);
    assert(after.rejected === before.rejected, `rejected ${before.rejected} -> ${after.rejected}: a repeat was refused`);
    assert(/applied: cancelled \(the writer had it already\)/.test(text), "shown: " + text);
    assert(Number(sql(`SELECT count(*) FROM mosqlite_applied WHERE id = '${id}'`)) === 1, "the cancel's id is not in mosqlite_applied");
    say("# after the reload: " + text +
      `; writer: cancelled +${after.cancelled - before.cancelled}, duplicates +${after.duplicates - before.duplicates}`);
  });

  await check("an action survives the broker frozen under it then killed and restarted, and is applied once", async () => {
    schedule("act-cut-1", 600000);
    await ops.waitForSelector(row("act-cut-1"), { timeout: 10000 });
    const before = status();
    assert(await lib("ops_broker_stop") === 0, "SIGSTOP");
    try {
      await cancelRow(ops, "act-cut-1");            /* published into a socket nobody reads */
      await ops.waitForSelector(act("cancel", "pending"), { timeout: 2000 });
    } finally {
      assert(await lib("ops_broker_kill") === 0, "SIGKILL");
    }
    await ops.waitForSelector("#conn[data-state=reconnecting]", { timeout: 10000 });
    assert(scheduled("act-cut-1") === 1, "cancelled while the broker was frozen");
    assert(await lib("ops_broker_start") === 0, "restart");
    await ops.waitForSelector("#conn[data-state=connected]", { timeout: 15000 });
    await ops.waitForSelector(`#act-list li:first-child[data-kind=cancel][data-state=applied]`, { timeout: 40000 });
    assert(scheduled("act-cut-1") === 0, "still scheduled");
    await until("the writer's status counts the cancel", () => {
      try { return status().cancelled > before.cancelled; } catch (e) { return false; }
    }).catch(() => {});
    await sleep(3000);    /* one status interval more: a second cancel would show now */
    const after = status();
    assert(after.cancelled === before.cancelled + 1, `cancelled ${before.cancelled} -> ${after.cancelled}: want one cancel`);
    assert(after.rejected === before.rejected, `rejected ${before.rejected} -> ${after.rejected}: a repeat was refused`);
    say("# after the broker's restart: " + await ops.textContent("#act-list li:first-child"));
  });

  await check("a refused action shows the writer's words", async () => {
    /* Two operators cancel the same write while the writer is frozen: the first cancel
     * is applied, the second refused, as it is not scheduled any more. */
    const other = await open(await browser.newContext(), "ops-web", OPS_OPPASS);
    schedule("act-twice-1", 600000);
    await ops.waitForSelector(row("act-twice-1"), { timeout: 10000 });
    await other.waitForSelector(row("act-twice-1"), { timeout: 10000 });
    const mine = "#act-list li[data-kind=cancel]:first-child";
    assert(await lib("ops_writer_stop") === 0, "SIGSTOP the writer");
    try {
      await cancelRow(ops, "act-twice-1");
      await ops.waitForSelector(mine + "[data-state=pending][data-acked=true]", { timeout: 10000 });
      await cancelRow(other, "act-twice-1");
      await other.waitForSelector(mine + "[data-state=pending][data-acked=true]", { timeout: 10000 });
    } finally {
      assert(await lib("ops_writer_cont") === 0, "SIGCONT the writer");
    }
    await ops.waitForSelector(mine + "[data-state=applied]", { timeout: 10000 });
    const refused = await other.waitForSelector(mine + "[data-state=refused]", { timeout: 10000 });
    const text = await refused.textContent();
    assert(/refused by the writer: request "act-twice-1" is not scheduled any more/.test(text), "shown: " + text);
    say("# " + text);
    await other.context().close();
  });

  await check("the cancelled writes were never applied, past their due time", async () => {
    for (const [id, at] of due) {
      if (Date.now() < at + 1500) await sleep(at + 1500 - Date.now());
      assert(lines("scheduled " + id) === 0, id + " was applied");
    }
  });

  await check("no JavaScript errors on the pages", async () => {
    assert(jsErrors.length === 0, jsErrors.join("; "));
  });

  await browser.close();
  process.exit(0);
})().catch((e) => { say("not ok - act test crashed: " + (e && e.stack || e)); process.exit(1); });
