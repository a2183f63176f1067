/*
 * jobs.js: the page's Jobs view. The job queue lives in the writer (docs/PROTOCOL.md,
 * "Jobs"); this view shows:
 *   - each queue with its counts by state and paused or not, from the writer's status
 *     ("jobs"), with the claims waiting in the writer and the live leases
 *     ("job_waiting", "job_leases"), and the workers holding jobs (the running jobs'
 *     workers);
 *   - the workers online, idle ones too (the admin command `workers`: worker, host,
 *     queues, slots, jobs running, last seen), read again when the status's count
 *     ("workers") changes and every few seconds while any is listed; a login that may
 *     not publish on PREFIX/admin (not an operator) sees the count only;
 *   - the running jobs (named query jobs_running): worker, attempt, progress, elapsed
 *     time, and a link to the build's log when the job's payload names one
 *     ("build_id": the convention of the build wrapper and mosqlite-work);
 *   - the queued jobs (jobs_queued), the failed and dead ones (jobs_failed) with each
 *     attempt (job_attempts: worker, start, end, outcome, exit code, error);
 *   - the recurring jobs with their next tick (job_cron), when there are any.
 * Every answer is small (a page of a few rows: Mosquitto sends WebSocket messages in
 * 4 KB slices). Job events (PREFIX/jobs/events/QUEUE) keep it live: a job that starts
 * or ends is added or removed at once and the lists it touches are read again; the
 * counts follow the status (published every status-interval while they change); the
 * running jobs are read again every few seconds for their progress.
 * An operator (see app.js) gets actions, kept and sent by act.js: retry a failed or dead
 * job, discard or cancel a queued one, cancel a running one, pause and resume a queue.
 * Every value from the database goes into the page as text, never as HTML.
 *
 * Plain script: window.mosqliteJobs(o) -> { onStatus(s), onEvent(ev), load(),
 * dropped(), render() }, where o = { query(name, params, cb), admin(cmd, members, cb),
 * online() (subscribed),
 * operator() (this login may act), acts (act.js's), openBuild(id) }.
 */
(function () {
  "use strict";

  var RUN_PAGE = 10, RUN_PAGES = 5;   /* running jobs: up to 50, 10 an answer */
  var QUEUED_PAGE = 10;               /* queued jobs: the first 10 */
  var FAILED_PAGE = 6;                /* failed and dead jobs: 6 an answer, "Older" for more */
  var ATTEMPTS = 5;                   /* attempts shown per failed job, the newest */
  var CRON_PAGE = 10;
  var WORKERS_LIMIT = 20;             /* workers listed: 20 (about 3.5 KB an answer) */
  var REFRESH_MS = 5000;              /* running jobs' progress */
  var STATES = ["scheduled", "ready", "blocked", "running", "retry", "done", "failed", "dead", "cancelled"];
  var QUEUED = ["scheduled", "ready", "blocked", "retry"];
  var MAX_ID = 9007199254740991;

  function $(id) { return document.getElementById(id); }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }
  function show(v) {
    if (v === null || v === undefined) return "";
    if (typeof v === "object") return JSON.stringify(v);
    return String(v);
  }
  function pad(n) { return n < 10 ? "0" + n : String(n); }
  function span(ms) {
    var s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + pad(s % 60) + " s";
    return Math.floor(s / 3600) + " h " + pad(Math.floor((s % 3600) / 60)) + " min";
  }
  function timeOf(iso) {
    if (!iso) return "";
    var d = new Date(iso);
    if (isNaN(d.getTime())) return show(iso);
    var t = pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
    if (Math.abs(Date.now() - d.getTime()) > 18 * 3600 * 1000)
      t = d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " + t;
    return t;
  }
  /* A job's progress as text: {"pct": 40, "step": "linking"} -> "40 % linking". */
  function progressText(p) {
    if (p === null || p === undefined || p === "") return "";
    var v = p;
    if (typeof p === "string") { try { v = JSON.parse(p); } catch (e) { return p; } }
    if (v && typeof v === "object" && !Array.isArray(v)) {
      var parts = [];
      if (typeof v.pct === "number") parts.push(v.pct + " %");
      if (typeof v.step === "string") parts.push(v.step);
      if (parts.length) return parts.join(" ");
    }
    return show(v);
  }
  function pct(p) {
    var v = p;
    if (typeof p === "string") { try { v = JSON.parse(p); } catch (e) { return null; } }
    return v && typeof v.pct === "number" && v.pct >= 0 && v.pct <= 100 ? v.pct : null;
  }

  function make(o) {
    var st = { counts: null, waiting: null, leases: null, denied: false,
               running: new Map(), runLoading: false, runAgain: false, runError: null,
               queued: [], queuedLoading: false, queuedAgain: false,
               failed: [], failedMore: false, failedLoading: false, failedAgain: false, failedError: null,
               attempts: new Map(), cron: [], gen: 0, timer: null,
               workerCount: null, workers: null, workersMore: 0, workersError: null, workersLoading: false };
    var armed = { key: null, timer: null };

    /* ---- reading ---- */

    function loadRunning() {
      if (st.runLoading) { st.runAgain = true; return; }
      st.runLoading = true;
      var gen = st.gen, rows = [], pages = 0;
      function page(after) {
        o.query("jobs_running", { after: after, queue: "", limit: RUN_PAGE }, function (r) {
          if (gen !== st.gen) return;
          if (!r.error) {
            Array.prototype.push.apply(rows, r.rows);
            if (r.rows.length >= RUN_PAGE && ++pages < RUN_PAGES) { page(Number(r.rows[r.rows.length - 1].id)); return; }
          }
          st.runLoading = false;
          st.runError = r.error || null;
          if (!r.error) {
            st.running = new Map();
            rows.forEach(function (x) { st.running.set(Number(x.id), x); });
          }
          render();
          if (st.runAgain) { st.runAgain = false; loadRunning(); }
        });
      }
      page(0);
    }

    function loadQueued() {
      if (st.queuedLoading) { st.queuedAgain = true; return; }
      st.queuedLoading = true;
      var gen = st.gen;
      o.query("jobs_queued", { after: 0, queue: "", limit: QUEUED_PAGE }, function (r) {
        if (gen !== st.gen) return;
        st.queuedLoading = false;
        if (!r.error) st.queued = r.rows;
        render();
        if (st.queuedAgain) { st.queuedAgain = false; loadQueued(); }
      });
    }

    /* The newest failed and dead jobs (the first page again), each with its attempts. */
    function loadFailed(older) {
      if (st.failedLoading) { st.failedAgain = true; return; }
      st.failedLoading = true;
      var gen = st.gen, before = older && st.failed.length ? Number(st.failed[st.failed.length - 1].id) : MAX_ID;
      o.query("jobs_failed", { before: before, queue: "", limit: FAILED_PAGE }, function (r) {
        if (gen !== st.gen) return;
        st.failedLoading = false;
        st.failedError = r.error || null;
        if (!r.error) {
          st.failed = older ? st.failed.concat(r.rows) : r.rows;
          st.failedMore = r.rows.length >= FAILED_PAGE;
          r.rows.forEach(function (j) { loadAttempts(Number(j.id)); });
        }
        render();
        if (st.failedAgain) { st.failedAgain = false; loadFailed(false); }
      });
    }

    function loadAttempts(id) {
      var gen = st.gen;
      o.query("job_attempts", { job: id, before: MAX_ID, limit: ATTEMPTS }, function (r) {
        if (gen !== st.gen || r.error) return;
        st.attempts.set(id, r.rows.slice().reverse());   /* oldest first */
        render();
      });
    }

    function loadCron() {
      var gen = st.gen;
      o.query("job_cron", { after: "", limit: CRON_PAGE }, function (r) {
        if (gen !== st.gen || r.error) return;
        st.cron = r.rows;
        render();
      });
    }

    /* The workers online: an operator's question (PREFIX/admin). */
    function loadWorkers() {
      if (!o.online() || !o.operator() || st.workersLoading) return;
      st.workersLoading = true;
      var gen = st.gen;
      o.admin("workers", { limit: WORKERS_LIMIT }, function (r) {
        if (gen !== st.gen) return;
        st.workersLoading = false;
        st.workersError = r.error || null;
        if (!r.error && Array.isArray(r.workers)) {
          st.workers = r.workers;
          st.workersMore = typeof r.count === "number" ? r.count - r.workers.length : 0;
          if (typeof r.count === "number") st.workerCount = r.count;
        }
        render();
      });
    }

    function load() {
      if (!o.online()) return;
      loadWorkers();
      loadRunning();
      loadQueued();
      loadFailed(false);
      loadCron();
    }

    /* A new connection: the answers to the old one's queries will not come. */
    function dropped() {
      st.gen++;
      st.runLoading = st.queuedLoading = st.failedLoading = st.workersLoading = false;
      st.runAgain = st.queuedAgain = st.failedAgain = false;
    }

    /* Lists read again shortly after events (one read for a burst of them). */
    var soon = { running: null, queued: null, failed: null };
    function again(which, fn) {
      if (soon[which]) return;
      soon[which] = setTimeout(function () { soon[which] = null; if (o.online()) fn(); }, 150);
    }

    function onEvent(ev) {
      if (!ev || typeof ev !== "object" || typeof ev.job !== "number") return;
      var from = ev.from, to = ev.to, id = ev.job;
      if (from === "running" && to !== "running") st.running.delete(id);   /* ended: gone at once */
      if (from === "running" || to === "running") again("running", loadRunning);
      if (QUEUED.indexOf(from) >= 0 || QUEUED.indexOf(to) >= 0) {
        if (QUEUED.indexOf(to) < 0) st.queued = st.queued.filter(function (q) { return Number(q.id) !== id; });
        again("queued", loadQueued);
      }
      if (from === "failed" || from === "dead" || to === "failed" || to === "dead") {
        if (to !== "failed" && to !== "dead") st.failed = st.failed.filter(function (f) { return Number(f.id) !== id; });
        again("failed", function () { loadFailed(false); });
      }
      render();
    }

    function onStatus(s) {
      if (!s || typeof s !== "object" || !("jobs" in s)) return;
      st.counts = s.jobs && typeof s.jobs === "object" ? s.jobs : {};
      st.waiting = typeof s.job_waiting === "number" ? s.job_waiting : null;
      st.leases = typeof s.job_leases === "number" ? s.job_leases : null;
      if (typeof s.workers === "number" && s.workers !== st.workerCount) {
        st.workerCount = s.workers;
        loadWorkers();
      }
      render();
    }

    /* ---- actions ---- */

    function pendingFor(kind, target) { return o.acts.pendingFor(kind, String(target)); }

    /* A button for an action; those that cannot be undone (discard, cancel) ask to
     * confirm with a second click within 5 s. */
    function actButton(kind, target, label, busy, confirm) {
      var b = el("button", "act"), key = kind + " " + target, p = pendingFor(kind, target);
      b.type = "button";
      b.setAttribute("data-job-act", kind);
      b.setAttribute("data-target", String(target));
      if (confirm) b.setAttribute("data-confirm", "1");
      if (p) { b.disabled = true; b.textContent = busy; }
      else if (armed.key === key) { b.className = "act armed"; b.textContent = "Confirm " + label.toLowerCase(); }
      else b.textContent = label;
      return b;
    }

    $("jobs").addEventListener("click", function (e) {
      var link = e.target.closest("a[data-build]");
      if (link) {
        e.preventDefault();
        o.openBuild(Number(link.getAttribute("data-build")));
        return;
      }
      var older = e.target.closest("#jobs-failed-older");
      if (older) { loadFailed(true); return; }
      var b = e.target.closest("button[data-job-act]");
      if (!b || !o.operator()) return;
      var kind = b.getAttribute("data-job-act"), target = b.getAttribute("data-target"), key = kind + " " + target;
      clearTimeout(armed.timer);
      if (b.getAttribute("data-confirm") && armed.key !== key) {
        armed.key = key;
        armed.timer = setTimeout(function () { armed.key = null; render(); }, 5000);
        render();
        return;
      }
      armed.key = null;
      o.acts.add(kind, target);
    });

    /* ---- drawing ---- */

    function buildLink(id) {
      if (id === null || id === undefined || !(Number(id) >= 0)) return null;
      var a = el("a", "job-build", "build " + show(id));
      a.href = "?build=" + encodeURIComponent(String(id));
      a.setAttribute("data-build", String(Number(id)));
      a.title = "this job's build log";
      return a;
    }

    function cell(tr, cls, text) { var td = el("td", cls, text); tr.appendChild(td); return td; }

    function renderQueues(may) {
      var body = $("jobs-queues"), names = st.counts ? Object.keys(st.counts).sort() : [];
      body.textContent = "";
      names.forEach(function (q) {
        var c = st.counts[q] || {}, tr = el("tr");
        tr.setAttribute("data-queue", q);
        tr.setAttribute("data-paused", String(c.paused === true));
        var name = cell(tr, "job-queue", q);
        if (c.paused === true) name.appendChild(el("span", "badge job-paused", "paused"));
        name.firstChild.nodeValue = q + " ";
        STATES.forEach(function (s) {
          var td = cell(tr, "num job-n", show(typeof c[s] === "number" ? c[s] : ""));
          td.setAttribute("data-state", s);
          if (!c[s]) td.classList.add("muted");
        });
        var act = cell(tr, "job-act");
        if (may) act.appendChild(c.paused === true ? actButton("queue_resume", q, "Resume", "Resuming…") :
          actButton("queue_pause", q, "Pause", "Pausing…"));
        body.appendChild(tr);
      });
      $("jobs-queues-act").hidden = !may;
      var workers = [];
      st.running.forEach(function (j) { if (j.worker && workers.indexOf(j.worker) < 0) workers.push(j.worker); });
      var facts = [];
      if (st.waiting !== null) facts.push(st.waiting + " claim" + (st.waiting === 1 ? "" : "s") + " waiting");
      if (st.leases !== null) facts.push(st.leases + " live lease" + (st.leases === 1 ? "" : "s"));
      facts.push(workers.length ? "workers running jobs: " + workers.join(", ") : "no worker running a job");
      $("jobs-facts").textContent = facts.join(" · ");
      var note = st.denied ? "This login may not read the job events (PREFIX/jobs/events/#): the view is not live." :
        !st.counts ? "Waiting for the writer's status." :
        !names.length ? "No job queue yet: a queue appears with its first job." : "";
      $("jobs-note").textContent = note;
      $("jobs-note").hidden = !note;
    }

    function renderWorkers(may) {
      var body = $("jobs-workers"), list = may && st.workers ? st.workers : [], n = st.workerCount;
      body.textContent = "";
      list.forEach(function (w) {
        var tr = el("tr", Number(w.running) > 0 ? "worker-busy" : null);
        tr.setAttribute("data-session", show(w.session));
        tr.setAttribute("data-worker", show(w.worker));
        cell(tr, null, show(w.worker)).title = "session " + show(w.session) + ", since " + timeOf(w.since);
        cell(tr, null, show(w.host));
        cell(tr, "job-queues-list", Array.isArray(w.queues) ? w.queues.join(", ") : "");
        cell(tr, "num", show(w.slots));
        cell(tr, "num job-running-n", show(w.running));
        var seen = cell(tr, "num", typeof w.idle_ms === "number" ? span(w.idle_ms) + " ago" : "");
        seen.title = show(w.last_seen);
        body.appendChild(tr);
      });
      $("jobs-workers-count").textContent = n === null ? "" :
        "(" + n + (st.workersMore > 0 && may ? ", the first " + list.length + " shown" : "") + ")";
      $("jobs-workers-box").hidden = !list.length;
      var none = $("jobs-workers-none");
      none.textContent = n === null ? "The writer's status has no worker count yet." :
        !n ? "No worker online." :
        !may ? n + " online: the list is for operators (a login that may send admin commands)." :
        st.workersError ? "Could not read the workers: " + st.workersError : "Reading the list…";
      none.hidden = list.length > 0;
    }

    function renderRunning(may) {
      var body = $("jobs-running"), now = Date.now(), list = Array.from(st.running.values());
      body.textContent = "";
      list.forEach(function (j) {
        var tr = el("tr"), id = Number(j.id);
        tr.setAttribute("data-job", String(id));
        cell(tr, "num", show(id));
        cell(tr, null, show(j.queue));
        cell(tr, null, show(j.worker));
        cell(tr, "num", show(j.attempt));
        var p = cell(tr, "job-progress"), v = pct(j.progress);
        if (v !== null) {
          var bar = el("span", "job-bar"), fill = el("span", "job-fill");
          fill.style.width = v + "%";
          bar.appendChild(fill);
          p.appendChild(bar);
        }
        p.appendChild(el("span", "job-progress-text", progressText(j.progress)));
        var t0 = new Date(j.started_at).getTime();
        var e = cell(tr, "num job-elapsed", isNaN(t0) ? "" : span(now - t0));
        e.setAttribute("data-started", String(t0));
        e.title = "started " + timeOf(j.started_at);
        var lk = cell(tr, null), a = buildLink(j.build_id);
        if (a) lk.appendChild(a);
        var act = cell(tr, "job-act");
        if (j.cancel_asked) act.appendChild(el("span", "muted", "stopping…"));
        else if (may) act.appendChild(actButton("job_cancel", id, "Cancel", "Cancelling…", true));
        body.appendChild(tr);
      });
      var n = st.counts ? Object.keys(st.counts).reduce(function (a, q) { return a + (st.counts[q].running || 0); }, 0) : list.length;
      $("jobs-running-count").textContent = "(" + Math.max(n, list.length) + ")";
      $("jobs-running-none").hidden = list.length > 0;
      $("jobs-running-none").textContent = st.runError ? "Could not read the running jobs: " + st.runError : "No job running.";
    }

    function renderQueued(may) {
      var body = $("jobs-queued");
      body.textContent = "";
      st.queued.forEach(function (j) {
        var tr = el("tr"), id = Number(j.id);
        tr.setAttribute("data-job", String(id));
        tr.setAttribute("data-state", show(j.state));
        cell(tr, "num", show(id));
        cell(tr, null, show(j.queue));
        var s = cell(tr, null);
        var badge = el("span", "badge", show(j.state));
        badge.setAttribute("data-state", show(j.state));
        s.appendChild(badge);
        cell(tr, null, j.run_at ? "at " + timeOf(j.run_at) : "since " + timeOf(j.created_at));
        var lk = cell(tr, null), a = buildLink(j.build_id);
        if (a) lk.appendChild(a);
        var act = cell(tr, "job-act");
        if (may) {
          act.appendChild(actButton("job_cancel", id, "Cancel", "Cancelling…", true));
          act.appendChild(actButton("job_discard", id, "Discard", "Discarding…", true));
        }
        body.appendChild(tr);
      });
      $("jobs-queued-none").hidden = st.queued.length > 0;
    }

    function renderFailed(may) {
      var list = $("jobs-failed");
      list.textContent = "";
      st.failed.forEach(function (j) {
        var id = Number(j.id), li = el("li", "job-failed");
        li.setAttribute("data-job", String(id));
        li.setAttribute("data-state", show(j.state));
        var head = el("div", "job-failed-head");
        head.appendChild(el("span", "num", "#" + id));
        head.appendChild(el("span", null, show(j.queue)));
        var badge = el("span", "badge", show(j.state));
        badge.setAttribute("data-state", show(j.state));
        head.appendChild(badge);
        if (j.exit_code !== null && j.exit_code !== undefined) head.appendChild(el("span", "muted", "exit " + show(j.exit_code)));
        head.appendChild(el("span", "muted", timeOf(j.finished_at)));
        var a = buildLink(j.build_id);
        if (a) head.appendChild(a);
        if (may) head.appendChild(actButton("job_retry", id, "Retry", "Retrying…"));
        li.appendChild(head);
        if (j.error) li.appendChild(el("div", "job-error", show(j.error)));
        var at = st.attempts.get(id);
        if (at && at.length) {
          var t = el("table", "job-attempts"), tb = el("tbody");
          if (Number(j.attempt) > at.length) {
            var more = el("tr"), td = el("td", "muted", (Number(j.attempt) - at.length) + " earlier attempts not shown");
            td.colSpan = 6;
            more.appendChild(td);
            tb.appendChild(more);
          }
          at.forEach(function (x) {
            var tr = el("tr");
            tr.setAttribute("data-attempt", show(x.attempt));
            cell(tr, "num", "attempt " + show(x.attempt));
            cell(tr, null, show(x.worker));
            cell(tr, null, timeOf(x.started_at) + (x.ended_at ? " – " + timeOf(x.ended_at) : ""));
            cell(tr, "job-outcome", show(x.outcome));
            cell(tr, "num", x.exit_code === null || x.exit_code === undefined ? "" : "exit " + show(x.exit_code));
            cell(tr, "job-error", show(x.error));
            tb.appendChild(tr);
          });
          t.appendChild(tb);
          li.appendChild(t);
        }
        list.appendChild(li);
      });
      $("jobs-failed-none").hidden = st.failed.length > 0;
      $("jobs-failed-none").textContent = st.failedError ? "Could not read the failed jobs: " + st.failedError : "No failed or dead job.";
      $("jobs-failed-older").hidden = !st.failedMore;
    }

    function renderCron() {
      var body = $("jobs-cron");
      body.textContent = "";
      st.cron.forEach(function (c) {
        var tr = el("tr");
        tr.setAttribute("data-cron", show(c.name));
        cell(tr, null, show(c.name));
        var n = cell(tr, null, timeOf(c.next_tick));
        n.title = show(c.next_tick);
        var due = new Date(c.next_tick).getTime();
        cell(tr, "num", isNaN(due) ? "" : due <= Date.now() ? "due" : "in " + span(due - Date.now()));
        cell(tr, null, c.last_tick ? timeOf(c.last_tick) : "never");
        body.appendChild(tr);
      });
      $("jobs-cron-box").hidden = !st.cron.length;
    }

    function render() {
      var may = o.operator();
      renderQueues(may);
      renderWorkers(may);
      renderRunning(may);
      renderQueued(may);
      renderFailed(may);
      renderCron();
    }

    /* Elapsed times go on counting; the running jobs are read again for their progress. */
    setInterval(function () {
      var now = Date.now();
      document.querySelectorAll("#jobs-running td.job-elapsed").forEach(function (td) {
        var t0 = Number(td.getAttribute("data-started"));
        if (t0) td.textContent = span(now - t0);
      });
    }, 1000);
    st.timer = setInterval(function () {
      if (st.running.size && o.online()) loadRunning();
      if (st.workerCount || (st.workerCount === null && st.workers === null)) loadWorkers();
    }, REFRESH_MS);

    return { onStatus: onStatus, onEvent: onEvent, load: load, dropped: dropped, render: render, workers: loadWorkers,
             denied: function (d) { st.denied = d; render(); } };
  }

  window.mosqliteJobs = make;
})();
