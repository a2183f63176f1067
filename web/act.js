/*
 * act.js: the page's actions, an operator's: pause and resume the writer, cancel a
 * scheduled write, cancel a running build. An action is kept in sessionStorage from the moment it is asked for,
 * and published again under the same id on every connection and then after 2 s, 4 s,
 * 8 s, then every 16 s, until the writer answers it: a dropped connection or a reload
 * of the page loses none. The writer applies none twice: a cancel carries its own id,
 * which the writer keeps once the cancel is done (a repeat is answered "duplicate" and
 * changes nothing); pause and resume set a state, so a repeat sets the same state. The
 * answer comes on a reply topic of the page (`reply_to`, named anew at each publish: a
 * reloaded page has a new client id); its outcome is kept with the action: applied, or
 * refused with the writer's words.
 *
 * KINDS has one entry per kind of action: the topic it goes on ("admin" for PREFIX/admin,
 * "write" for PREFIX/write), the request (without its id and reply_to), and what to call
 * it: the writer's pause and resume, a scheduled write's cancel, a job's retry, discard
 * and cancel, a queue's pause and resume. The answer is read by the topic's reader (a command's answer, a write's receipt)
 * unless the entry has its own (outcome(kind, msg) -> {ok, text}, or null: not an answer).
 * An entry's `replaces` names the kinds whose pending actions of the same target a new
 * one ends: a resume asked for while a pause is unanswered stops the pause's repeats, so
 * no repeat of the pause can reach the writer after the resume.
 *
 * No DOM. Plain script: defines window.mosqliteActions(opts) -> acts, where
 * opts = { prefix, key (the sessionStorage key), ready() (connected, with a login that
 * may act), send(topic, text, acked) (acked() once the broker has it; false when not
 * connected), replyTo(id) (a topic the page reads now), changed() (redraw) }.
 */
(function () {
  "use strict";

  var FIRST_RETRY_MS = 2000, MAX_RETRY_MS = 16000;
  var KEEP_DONE = 20;            /* answered actions kept for the list */

  var KINDS = {
    pause: { topic: "admin", what: function () { return "pause the writer"; },
             body: function () { return { cmd: "pause" }; }, done: "paused", replaces: ["pause", "resume"] },
    resume: { topic: "admin", what: function () { return "resume the writer"; },
              body: function () { return { cmd: "resume" }; }, done: "resumed", replaces: ["pause", "resume"] },
    cancel: { topic: "write", what: function (a) { return "cancel scheduled write " + a.target; },
              body: function (a) { return { cancel: a.target }; }, done: "cancelled" },
    /* A running build: its row set to cancelled, only while this attempt (the target is
     * "BUILD:ATTEMPT") is running. The build wrapper watches its row and stops the command;
     * its own end then leaves `cancelled` as it is. A build that ended meanwhile is not
     * touched: the receipt says "changes": 0, shown as refused. */
    cancel_build: { topic: "write",
                    what: function (a) { return "cancel build " + buildOf(a).id; },
                    body: function (a) {
                      var b = buildOf(a);
                      return { table: "builds", op: "update", set: { status: "cancelled" },
                               where: { id: b.id, attempt: b.attempt, status: "running" } };
                    },
                    done: "cancelled",
                    outcome: function (kind, msg) {
                      if (msg.status === "applied" && msg.changes === 0)
                        return { ok: false, text: "the build was not running any more: it had ended, nothing was cancelled" };
                      return writeOutcome(kind, msg);
                    } },

    /* The job queue's commands (target: the job's id, or the queue's name). */
    job_retry: { topic: "admin", what: function (a) { return "retry job " + a.target; },
                 body: function (a) { return { cmd: "job_retry", job: Number(a.target) }; }, done: "back to ready" },
    job_discard: { topic: "admin", what: function (a) { return "discard job " + a.target; },
                   body: function (a) { return { cmd: "job_discard", job: Number(a.target) }; }, done: "discarded" },
    job_cancel: { topic: "admin", what: function (a) { return "cancel job " + a.target; },
                  body: function (a) { return { cmd: "job_cancel", job: Number(a.target) }; }, done: "cancelled",
                  outcome: jobCancelOutcome },
    queue_pause: { topic: "admin", what: function (a) { return "pause queue " + a.target; },
                   body: function (a) { return { cmd: "queue_pause", queue: a.target }; }, done: "paused",
                   replaces: ["queue_pause", "queue_resume"] },
    queue_resume: { topic: "admin", what: function (a) { return "resume queue " + a.target; },
                    body: function (a) { return { cmd: "queue_resume", queue: a.target }; }, done: "resumed",
                    replaces: ["queue_pause", "queue_resume"] }
  };

  /* A job's cancel: a running job says "running" until its worker has stopped it. A
   * repeat after the first copy was applied finds it cancelled already: applied. */
  function jobCancelOutcome(kind, msg) {
    if (msg.ok === true) return { ok: true, text: msg.state === "running" ? "cancel asked: its worker stops it" : kind.done };
    if (typeof msg.error === "string" && / is already cancelled$/.test(msg.error))
      return { ok: true, text: kind.done + " (the writer had it already)" };
    return adminOutcome(kind, msg);
  }

  /* A build's target, "BUILD:ATTEMPT". */
  function buildOf(a) {
    var m = /^(\d+):(-?\d+)$/.exec(String(a.target));
    return m ? { id: Number(m[1]), attempt: Number(m[2]) } : { id: null, attempt: null };
  }

  /* A command's answer: {"cmd": ..., "ok": true, ...} or {"cmd": ..., "error": "..."}. */
  function adminOutcome(kind, msg) {
    if (msg.ok === true) return { ok: true, text: kind.done };
    if (typeof msg.error === "string") return { ok: false, text: msg.error };
    return null;
  }
  /* A write's receipt. "duplicate": this id was done before (its first answer went to
   * the reply topic of the page before a reload, or is still on its way). */
  function writeOutcome(kind, msg) {
    if (msg.status === "rejected") return { ok: false, text: typeof msg.error === "string" ? msg.error : "rejected" };
    if (msg.status === "duplicate") return { ok: true, text: kind.done + " (the writer had it already)" };
    if (typeof msg.status === "string") return { ok: true, text: kind.done };
    return null;
  }

  /* An id unique without coordination (ids are one namespace for every producer):
   * "web-", the milliseconds, then 64 random bits. Letters, digits and "-": it is also
   * the last level of the action's reply topic. */
  function newId() {
    var r = window.crypto.getRandomValues(new Uint8Array(8)), s = "";
    r.forEach(function (b) { s += (b + 256).toString(16).slice(1); });
    return "web-" + Date.now().toString(36) + "-" + s;
  }

  function make(o) {
    var list = load();           /* oldest first */
    var timer = null;

    function load() {
      try {
        var a = JSON.parse(window.sessionStorage.getItem(o.key) || "[]");
        return Array.isArray(a) ? a.filter(function (x) { return x && KINDS[x.kind] && typeof x.id === "string"; }) : [];
      } catch (e) { return []; }
    }
    function save() {
      try { window.sessionStorage.setItem(o.key, JSON.stringify(list)); } catch (e) { /* private mode: in memory only */ }
    }

    function pending() { return list.filter(function (a) { return a.state === "pending"; }); }

    /* A new action: kept first, then sent. */
    function add(kind, target) {
      if (!KINDS[kind]) throw new Error("no such action: " + kind);
      var a = { id: newId(), kind: kind, target: target === undefined ? null : target, at: Date.now(),
                state: "pending", sent: 0, acked: false, text: "", next: 0, wait: FIRST_RETRY_MS };
      pending().forEach(function (p) {
        if ((KINDS[kind].replaces || []).indexOf(p.kind) < 0 || p.target !== a.target) return;
        p.state = "replaced";
        p.text = "no longer sent: " + KINDS[kind].what(a) + " was asked for after it";
      });
      list.push(a);
      trim();
      save();
      send(a);
      o.changed();
      return a;
    }

    function send(a) {
      if (!o.ready()) return;
      var k = KINDS[a.kind], req = k.body(a);
      req.id = a.id;
      req.reply_to = o.replyTo(a.id);
      var sent = o.send(o.prefix + "/" + k.topic, JSON.stringify(req), function () {
        if (!a.acked) { a.acked = true; save(); o.changed(); }
      });
      if (!sent) return;
      a.sent++;
      a.next = Date.now() + a.wait;
      a.wait = Math.min(MAX_RETRY_MS, a.wait * 2);
      save();
    }

    /* Every pending action now (a connection, with a login that may act), the pauses
     * starting again from 2 s. */
    function resend() {
      pending().forEach(function (a) { a.wait = FIRST_RETRY_MS; a.acked = false; send(a); });
      o.changed();
    }

    function tick() {
      var now = Date.now();
      pending().forEach(function (a) { if (a.next && now >= a.next) send(a); });
    }

    /* The answer to action ID (its reply topic's last level); the first one counts. A
     * replaced action's late answer is still its outcome. */
    function answer(id, msg) {
      var a = list.filter(function (x) { return x.id === id; })[0];
      if (!a || (a.state !== "pending" && a.state !== "replaced") || !msg || typeof msg !== "object") return null;
      var k = KINDS[a.kind], out = (k.outcome || (k.topic === "admin" ? adminOutcome : writeOutcome))(k, msg);
      if (!out) return null;
      a.state = out.ok ? "applied" : "refused";
      a.text = out.text;
      a.answered = Date.now();
      save();
      o.changed();
      return a;
    }

    function trim() {
      var done = list.filter(function (a) { return a.state !== "pending"; });
      var drop = done.length - KEEP_DONE;
      if (drop > 0) list = list.filter(function (a) { return a.state === "pending" || done.indexOf(a) >= drop; });
    }

    /* An answered action leaves the list. */
    function dismiss(id) {
      list = list.filter(function (a) { return a.id !== id || a.state === "pending"; });
      save();
      o.changed();
    }

    timer = setInterval(tick, 1000);

    return {
      add: add, resend: resend, answer: answer, dismiss: dismiss,
      list: function () { return list.slice(); },
      pendingFor: function (kind, target) {
        return pending().filter(function (a) { return a.kind === kind && (target === undefined || a.target === target); })[0] || null;
      },
      what: function (a) { return KINDS[a.kind].what(a); },
      stop: function () { clearInterval(timer); }
    };
  }

  window.mosqliteActions = make;
})();
