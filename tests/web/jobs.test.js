/*
 * jobs.test.js: the page's Jobs view in headless Debian Chromium (playwright-core), run
 * by tests/t_web.sh after act.test.js, on its broker made from conf/secure/ with a
 * writer of its own (OPS_DB): jobs enqueued by the producer builder, a worker simulated
 * with mosquitto_rr (its claims, which wait for their answer topic's SUBACK before they
 * publish) and mosquitto_pub (progress, done, fail) as the worker role's builder-arm1,
 * the page logged in as the viewer web and as the operator ops-web.
 * Checks: the view lists the queue's counts and a running job with its worker, progress,
 * elapsed time and a link to its build's log; it updates live when the job ends; a
 * failed job shows its attempt (worker, exit code, error); an operator retries it (it
 * goes back to ready, then runs as attempt 2), cancels a queued job, pauses the queue (a
 * claim then gets nothing from it) and resumes it (a claim gets the job); a viewer sees
 * the view and no action; a worker's hello lists it among the workers online (host,
 * queues, slots, running, last seen) and its Last Will (mosquitto_sub killed -9) takes it
 * off the list.
 */
"use strict";
const path = require("path");
const { execFileSync, spawn } = require("child_process");
const { chromium } = require(path.join(process.env.ROOT, "node_modules", "playwright-core"));

const { OPS_DB, OPS_MQTT, OPS_WS, OPS_BPASS, OPS_WEBPASS, OPS_OPPASS, OPS_WKPASS } = process.env;
const PREFIX = process.env.PREFIX_TOPIC || "mosqlite";
const URL = `http://127.0.0.1:${OPS_WS}/index.html`;
const WORKER = "builder-arm1";

function say(s) { process.stdout.write(s + "\n"); }
async function check(desc, fn) {
  try { await fn(); say("ok - " + desc); }
  catch (e) { say("not ok - " + desc + " (" + String(e && e.message || e).split("\n")[0] + ")"); }
}
function assert(cond, msg) { if (!cond) throw new Error(msg); }
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(what, fn, ms) {
  for (const end = Date.now() + (ms || 10000); Date.now() < end; await sleep(100)) if (await fn()) return;
  throw new Error("timed out: " + what);
}

function sql(q) { return execFileSync("sqlite3", ["-cmd", ".timeout 5000", OPS_DB, q]).toString().trim(); }
const jobState = (id) => sql(`SELECT state FROM mosqlite_jobs WHERE id = ${Number(id)}`);
/* An enqueue as the producer builder; the new job's id once it is in the file. */
let enqueued = 0;
async function enqueue(payload) {
  const id = "jobs-test-" + (++enqueued) + "-" + process.pid;
  execFileSync("mosquitto_pub", ["-p", OPS_MQTT, "-u", "builder", "-P", OPS_BPASS, "-q", "2", "-t", `${PREFIX}/write`,
    "-m", JSON.stringify({ id, op: "enqueue", queue: "build", payload })]);
  let job = "";
  await until("job " + id + " enqueued", () => (job = sql(`SELECT id FROM mosqlite_jobs WHERE enq_id = '${id}'`)) !== "");
  return Number(job);
}
/* The worker: a claim on PREFIX/jobs/build, its answer (a grant or "empty"). */
let claims = 0;
function claim(waitMs) {
  const id = "jt-claim-" + (++claims) + "-" + process.pid;
  const out = execFileSync("mosquitto_rr", ["-p", OPS_MQTT, "-u", WORKER, "-P", OPS_WKPASS, "-i", WORKER, "-q", "1",
    "-t", `${PREFIX}/jobs/build`, "-e", `${PREFIX}/jobs/to/${WORKER}`, "-W", "15",
    "-m", JSON.stringify({ op: "claim", id, worker: WORKER, session: "jt-" + process.pid,
      reply_to: `${PREFIX}/jobs/to/${WORKER}`, wait_ms: waitMs || 0 })]).toString().trim();
  return JSON.parse(out);
}
function work(msg) {
  execFileSync("mosquitto_pub", ["-p", OPS_MQTT, "-u", WORKER, "-P", OPS_WKPASS, "-q", "1",
    "-t", `${PREFIX}/jobs/build`, "-m", JSON.stringify(msg)]);
}
let msgs = 0;
const done = (g) => work({ op: "done", id: "jt-done-" + (++msgs) + "-" + process.pid, job: g.job, attempt: g.attempt, exit_code: 0 });
const fail = (g, error) => work({ op: "fail", id: "jt-fail-" + (++msgs) + "-" + process.pid, job: g.job, attempt: g.attempt,
  exit_code: 2, error });

(async () => {
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium", headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
      "--disable-default-apps", "--disable-extensions", "--no-default-browser-check", "--disable-breakpad"],
  });
  const jsErrors = [];
  async function open(user, pass) {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 960 } });
    const p = await ctx.newPage();
    p.on("pageerror", (e) => jsErrors.push(user + ": " + e));
    p.on("console", (m) => { if (m.type() === "error") say("# console (" + user + "): " + m.text()); });
    await p.goto(URL);
    await p.waitForSelector("#login:not([hidden])", { timeout: 10000 });
    await p.fill("#login-user", user);
    await p.fill("#login-pass", pass);
    await p.click("#login-go");
    await p.waitForSelector("#conn[data-state=connected]", { timeout: 10000 });
    await p.waitForSelector("#writer-state[data-state=online], #writer-state[data-state=paused]", { timeout: 10000 });
    return p;
  }
  const queue = (q) => `#jobs-queues tr[data-queue="${q}"]`;
  const count = (p, state) => p.textContent(`${queue("build")} td[data-state=${state}]`).then((t) => Number(t || 0));
  const running = (id) => `#jobs-running tr[data-job="${id}"]`;
  const failedJob = (id) => `#jobs-failed li[data-job="${id}"]`;
  const queued = (id) => `#jobs-queued tr[data-job="${id}"]`;
  const button = (kind, target) => `#jobs button[data-job-act=${kind}][data-target="${target}"]`;
  const act = (kind, state) => `#act-list li[data-kind=${kind}]` + (state ? `[data-state=${state}]` : "");

  const ops = await open("ops-web", OPS_OPPASS);
  await ops.waitForSelector("#role:not([hidden])", { timeout: 5000 });

  let run = null;
  await check("the Jobs view lists the queue's counts and a running job (worker, progress, elapsed, its build's log)", async () => {
    const job = await enqueue({ build_id: 1413, ref: "a3f9c21" });
    await ops.waitForFunction(() => {
      const td = document.querySelector('#jobs-queues tr[data-queue="build"] td[data-state=ready]');
      return td && Number(td.textContent) >= 1;
    }, null, { timeout: 10000 });
    run = claim(0);
    assert(run.op === "job" && run.job === job, "the worker got " + JSON.stringify(run));
    work({ op: "progress", job: run.job, attempt: run.attempt, progress: { pct: 40, step: "linking" } });
    await ops.waitForSelector(running(job), { timeout: 10000 });
    const row = await ops.textContent(running(job));
    assert(row.includes(WORKER), "no worker in " + row);
    await ops.waitForFunction((sel) => /40 % linking/.test(document.querySelector(sel).textContent), running(job), { timeout: 15000 });
    assert(await ops.isVisible(`${running(job)} .job-fill`), "no progress bar");
    assert(/^\d+ s$/.test((await ops.textContent(`${running(job)} td.job-elapsed`)).trim()), "elapsed time");
    await until("running 1 in the counts", async () => await count(ops, "running") === 1);
    assert(/workers running jobs: builder-arm1/.test(await ops.textContent("#jobs-facts")), "facts: " + await ops.textContent("#jobs-facts"));
    assert(/1 live lease/.test(await ops.textContent("#jobs-facts")), "facts: " + await ops.textContent("#jobs-facts"));
    await ops.click(`${running(job)} a[data-build="1413"]`);
    await ops.waitForFunction(() => /^Build 1413/.test(document.getElementById("log-title").textContent), null, { timeout: 5000 });
    assert(new URLSearchParams(new (require("url").URL)(ops.url()).search).get("build") === "1413", "the URL names the build: " + ops.url());
    say("# running: " + row.replace(/\s+/g, " ").trim());
  });

  await check("the view updates live when the job ends (the row goes, done counts it)", async () => {
    assert(run, "no running job");
    const before = await count(ops, "done");
    done(run);
    await ops.waitForSelector(running(run.job), { state: "detached", timeout: 10000 });
    await until("done counted", async () => await count(ops, "done") === before + 1);
    assert(await count(ops, "running") === 0, "still counted running");
    assert(await ops.isVisible("#jobs-running-none"), "no 'No job running.'");
  });

  let failedId = null;
  await check("a failed job shows its attempt: worker, exit code, error", async () => {
    const job = await enqueue({ build_id: 1409 });
    const g = claim(0);
    assert(g.job === job, "claimed " + JSON.stringify(g));
    fail(g, "make: *** [all] Error 2");
    await ops.waitForSelector(`${failedJob(job)} tr[data-attempt="1"]`, { timeout: 10000 });
    const text = await ops.textContent(failedJob(job));
    assert(/failed/.test(text) && text.includes(WORKER) && /exit 2/.test(text) && text.includes("make: *** [all] Error 2"), "shown: " + text);
    failedId = job;
    say("# failed: " + text.replace(/\s+/g, " ").trim());
  });

  await check("an operator retries a failed job: back to ready, then it runs (attempt 2)", async () => {
    assert(failedId, "no failed job");
    await ops.click(button("job_retry", failedId));
    await ops.waitForSelector(act("job_retry", "applied"), { timeout: 10000 });
    assert(jobState(failedId) === "ready", "state " + jobState(failedId));
    await ops.waitForSelector(failedJob(failedId), { state: "detached", timeout: 10000 });
    await ops.waitForSelector(queued(failedId), { timeout: 10000 });
    const g = claim(0);
    assert(g.job === failedId && g.attempt === 2, "claimed " + JSON.stringify(g));
    await ops.waitForSelector(running(failedId), { timeout: 10000 });
    done(g);
    await ops.waitForSelector(running(failedId), { state: "detached", timeout: 10000 });
    assert(jobState(failedId) === "done", "state " + jobState(failedId));
    say("# " + await ops.textContent(act("job_retry", "applied")));
  });

  let keep = null, waiting = null;
  await check("a viewer sees the Jobs view and no action", async () => {
    keep = await enqueue({ build_id: 1410 });           /* a failed job left in the list */
    const g = claim(0);
    fail(g, "left failed");
    waiting = await enqueue({ build_id: 1411 });        /* and a queued one */
    const viewer = await open("web", OPS_WEBPASS);
    await viewer.waitForSelector(`${failedJob(keep)} tr[data-attempt="1"]`, { timeout: 10000 });
    await viewer.waitForSelector(queued(waiting), { timeout: 10000 });
    await viewer.waitForSelector(queue("build"), { timeout: 10000 });
    await ops.waitForSelector(button("job_cancel", waiting), { timeout: 10000 });
    const seen = await viewer.evaluate(() => ({
      buttons: Array.from(document.querySelectorAll("#jobs button")).filter((b) => b.offsetParent).length,
      acts: document.querySelectorAll("#jobs [data-job-act]").length,
    }));
    assert(seen.buttons === 0 && seen.acts === 0, "a viewer sees actions: " + JSON.stringify(seen));
    await viewer.context().close();
  });

  await check("an operator cancels a queued job (with a confirming click)", async () => {
    assert(waiting, "no queued job");
    await ops.click(button("job_cancel", waiting));
    await ops.waitForSelector(`${button("job_cancel", waiting)}.armed`, { timeout: 2000 });
    assert(jobState(waiting) === "ready", "cancelled at the first click");
    await ops.click(button("job_cancel", waiting));
    await ops.waitForSelector(act("job_cancel", "applied"), { timeout: 10000 });
    assert(jobState(waiting) === "cancelled", "state " + jobState(waiting));
    await ops.waitForSelector(queued(waiting), { state: "detached", timeout: 10000 });
    await until("cancelled counted", async () => await count(ops, "cancelled") >= 1);
  });

  await check("an operator pauses the queue (a claim gets nothing from it) and resumes it (a claim gets the job)", async () => {
    await ops.click(button("queue_pause", "build"));
    await ops.waitForSelector(act("queue_pause", "applied"), { timeout: 10000 });
    await ops.waitForSelector(`${queue("build")}[data-paused=true] .job-paused`, { timeout: 10000 });
    const job = await enqueue({ build_id: 1412 });
    const nothing = claim(1000);
    assert(nothing.op === "empty", "a claim on the paused queue got " + JSON.stringify(nothing));
    await ops.click(button("queue_resume", "build"));
    await ops.waitForSelector(act("queue_resume", "applied"), { timeout: 10000 });
    await ops.waitForSelector(`${queue("build")}[data-paused=false]`, { timeout: 10000 });
    const g = claim(5000);
    assert(g.op === "job" && g.job === job, "after the resume a claim got " + JSON.stringify(g));
    done(g);
  });

  await check("a worker online is listed (worker, host, queues, slots, running, last seen) and goes when killed -9 (its Last Will)", async () => {
    const session = "will-s-" + process.pid, name = "will-worker";
    const will = spawn("mosquitto_sub", ["-p", OPS_MQTT, "-u", WORKER, "-P", OPS_WKPASS, "-i", "wk-" + process.pid, "-q", "1",
      "-t", `${PREFIX}/jobs/to/wk-${process.pid}`, "--will-topic", `${PREFIX}/jobs/worker`, "--will-qos", "2",
      "--will-payload", JSON.stringify({ op: "gone", worker: name, session })], { stdio: "ignore" });
    try {
      await sleep(300);     /* connected: its will is with the broker */
      execFileSync("mosquitto_pub", ["-p", OPS_MQTT, "-u", WORKER, "-P", OPS_WKPASS, "-q", "2", "-t", `${PREFIX}/jobs/worker`,
        "-m", JSON.stringify({ op: "hello", worker: name, session, host: "arm-box-7", queues: ["build.arm64", "build"], jobs: 3 })]);
      const row = `#jobs-workers tr[data-session="${session}"]`;
      await ops.waitForSelector(row, { timeout: 15000 });
      const cells = await ops.$$eval(`${row} td`, (tds) => tds.map((td) => td.textContent));
      assert(cells[0] === name && cells[1] === "arm-box-7" && cells[2] === "build.arm64, build" && cells[3] === "3" &&
        cells[4] === "0" && /^\d+ s ago$/.test(cells[5]), "row: " + JSON.stringify(cells));
      assert(/\(\d+\)/.test(await ops.textContent("#jobs-workers-count")), "count: " + await ops.textContent("#jobs-workers-count"));
      say("# worker: " + cells.join(" | "));
      will.kill("SIGKILL");
      await ops.waitForSelector(row, { state: "detached", timeout: 15000 });
    } finally {
      will.kill("SIGKILL");
    }
  });

  await check("no JavaScript errors on the pages", async () => {
    assert(jsErrors.length === 0, jsErrors.join("; "));
  });

  await browser.close();
  process.exit(0);
})().catch((e) => { say("not ok - jobs test crashed: " + (e && e.stack || e)); process.exit(1); });
