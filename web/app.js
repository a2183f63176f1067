/*
 * app.js: the mosqlite page. It connects to the broker it was loaded from (MQTT over
 * WebSockets: ws://location.host/, wss:// when the page came over https, or ?broker=),
 * with a login form when the broker wants one (the password stays in this page's memory,
 * never in a URL). It subscribes to PREFIX/status (the writer's retained status),
 * PREFIX/events/# (committed rows), PREFIX/rejected and a reply topic of its own, and
 * runs the named queries right behind that SUBSCRIBE (the broker takes a connection's
 * packets in order, so the subscriptions are in place before any query reaches the
 * writer): recent_builds (a page at a time, newest first, filtered), rejections (the
 * newest kept in mosqlite_rejected), scheduled, and a build's row and log. logload.js
 * reads a build's log (fast however long: many small answers in flight) and keeps it
 * current; logview.js shows the lines. After a reconnect or the writer coming back
 * online, everything is asked for again. The writer's status shows online, paused or
 * offline; while it is offline or does not answer, the lists say so. A build run again
 * has attempts, each with its own log: the latest is shown, the earlier ones a choice away.
 * A login that may act (an operator's) gets the actions: pause and resume the writer,
 * cancel a scheduled write, cancel a running build, and in the Jobs view (jobs.js, fed
 * with PREFIX/jobs/events/+ and the status) a job's retry, discard and cancel, a queue's
 * pause and resume; act.js keeps each one until the writer has answered it.
 * Every value from the database goes into the page as text, never as HTML.
 * Plain script, no modules: Mosquitto's HTTP server sends no Content-Type.
 */
(function () {
  "use strict";

  var params = new URLSearchParams(location.search);
  var PREFIX = params.get("prefix") || "mosqlite";
  var BROKER = window.mosqliteBroker;   /* page.html's: ?broker=, else this page's host */
  var BUILDS_PAGE = 20;          /* builds in one answer: under 4 KB, one WebSocket write
                                    (the broker's idle loop sends more in 4 KB slices,
                                    100 ms apart) */
  var ENDED = ["passed", "failed", "cancelled", "lost"];   /* statuses of a build that ended */
  var MAX_ID = 9007199254740991;
  var REJ_PAGES = 5;             /* rejections backfilled: 5 answers of 10 */
  var REJ_CAP = 200;             /* rejections kept */
  var QUERY_TIMEOUT_MS = 8000;   /* a query unanswered by then is retried later */

  var T_STATUS = PREFIX + "/status";
  var T_REJECTED = PREFIX + "/rejected";
  var T_EVENTS = PREFIX + "/events/";
  var T_QUERY = PREFIX + "/query";
  var CLIENT_ID = "mosqlite-web-" + Math.random().toString(16).slice(2, 10);
  var T_REPLY = PREFIX + "/reply/" + CLIENT_ID + "/";
  var T_ACT = T_REPLY + "act/";   /* an action's answer: T_ACT + its id */
  var T_PROBE = PREFIX + "/operator/" + CLIENT_ID;   /* only operators may publish and read it */
  var T_JOBEV = PREFIX + "/jobs/events/";   /* job state changes (jobs.js) */

  /* ---- small DOM helpers: text only ---- */

  function $(id) { return document.getElementById(id); }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }

  /* A database value as the text to show: NULL spelled out, objects as JSON. */
  function show(v) {
    if (v === null || v === undefined) return "NULL";
    if (typeof v === "object") return JSON.stringify(v);
    return String(v);
  }

  function pad(n, w) { n = String(n); while (n.length < (w || 2)) n = "0" + n; return n; }

  function clock(d) {
    return pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  }

  /* An ISO time from the database as local HH:MM:SS, with the date when it is not
   * within the last 18 hours (or the text as is). */
  function timeOf(iso) {
    if (iso === null || iso === undefined || iso === "") return "";
    var d = new Date(iso);
    if (isNaN(d.getTime())) return show(iso);
    var t = clock(d);
    if (Math.abs(Date.now() - d.getTime()) > 18 * 3600 * 1000)
      t = d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " + t;
    return t;
  }

  function ago(ms) {
    var s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min";
    if (s < 86400) return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
    return Math.floor(s / 86400) + " d";
  }

  /* A span of time, precise to the second: "42 s", "3 min 05 s", "2 h 07 min". */
  function span(ms) {
    var s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + pad(s % 60) + " s";
    return Math.floor(s / 3600) + " h " + pad(Math.floor((s % 3600) / 60)) + " min";
  }

  /* How long a build took: its duration_ms when recorded, else finished_at - started_at;
   * a running or queued build counts up from started_at; any other one without an end
   * shows nothing (it ended, but nothing says when). */
  function took(b) {
    if (typeof b.duration_ms === "number" && b.duration_ms >= 0) return span(b.duration_ms);
    var t0 = new Date(b.started_at).getTime();
    if (isNaN(t0)) return "";
    if (b.finished_at) {
      var t1 = new Date(b.finished_at).getTime();
      return isNaN(t1) ? "" : span(t1 - t0);
    }
    return b.status === "running" ? span(Date.now() - t0) : "";
  }

  /* Text that may hold ANSI escapes, into node as styled runs (text only). */
  function ansiInto(node, text) {
    mosqliteAnsi.runs(text).forEach(function (r) {
      var s = document.createElement("span");
      mosqliteAnsi.apply(s, r.style);
      s.textContent = r.text;
      node.appendChild(s);
    });
    return node;
  }

  function setBadge(node, state, text) {
    node.setAttribute("data-state", state);
    node.textContent = text;
  }

  $("broker").textContent = BROKER.replace(/\/\/[^@\/]*@/, "//") + (PREFIX !== "mosqlite" ? "  prefix " + PREFIX : "");
  $("broker").title = "client id " + CLIENT_ID;
  $("conn").setAttribute("data-client-id", CLIENT_ID);

  if (typeof mosqliteMqtt === "undefined") {
    $("fatal").hidden = false;
    $("fatal").textContent = "mqtt.js did not load: reload the page.";
    setBadge($("conn"), "down", "no MQTT client");
    return;
  }
  /* ---- connection, and the login a broker may ask for ----
   * The client (mqtt.js) reconnects by itself; a refused login (CONNACK "not authorized"
   * or "bad user name or password") stops that and shows the form instead. The first
   * connection takes over the WebSocket index.html opened while the scripts loaded. */

  var connected = false, subscribed = false, everConnected = false, client = null;
  var operator = false;           /* this login may act (see setOperator) */
  var login = { username: "", password: "", asked: false };

  function connect() {
    if (client) client.end(true);
    var opts = {
      clientId: CLIENT_ID,          /* a clean session: the page asks again what it needs */
      keepalive: 20,
      connectTimeout: 5000,
      reconnectPeriod: 1000,
      socket: window.mosqliteSocket   /* page.html's, for the first connection */
    };
    window.mosqliteSocket = null;
    if (login.username) { opts.username = login.username; opts.password = login.password; }
    var c = mosqliteMqtt.connect(BROKER, opts);
    client = c;
    setBadge($("conn"), "connecting", "connecting");
    c.on("connect", function () {
      if (c !== client) return;
      connected = true;
      everConnected = true;
      $("login").hidden = true;
      setBadge($("conn"), "connected", login.username ? "connected as " + login.username : "connected");
      cancelQueries();
      var subs = [{ topic: T_STATUS, qos: 1 }, { topic: T_EVENTS + "#", qos: 0 },
                  { topic: T_REJECTED, qos: 1 }, { topic: T_REPLY + "#", qos: 1 }, { topic: T_PROBE, qos: 1 },
                  { topic: T_JOBEV + "+", qos: 0 }];
      c.subscribe(subs, function (err, granted) {
        if (c !== client) return;
        if (err) { setBadge($("conn"), "down", "subscribe failed: " + err.message); return; }
        var refused = (granted || []).filter(function (g) { return g.qos & 0x80; })
          .map(function (g) { return g.topic; });
        jobs.denied(refused.indexOf(T_JOBEV + "+") >= 0);   /* said in the Jobs view */
        refused = refused.filter(function (t) { return t !== T_PROBE && t !== T_JOBEV + "+"; });
        if (refused.length) setBadge($("conn"), "down", "connected, not allowed to read " + refused.join(", "));
      });
      /* May this login act? Its own message on T_PROBE comes back only if the broker lets
       * it publish and read there, which conf/secure/acl grants the operators alone. */
      c.publish(T_PROBE, "{}", { qos: 1 });
      /* The broker takes a connection's packets in order: the queries published now
       * reach the writer after these subscriptions are in place, so their answers and
       * every event after them arrive, without waiting a round trip for the SUBACK. */
      subscribed = true;
      catchUp();
    });
    c.on("reconnect", function () {
      if (c !== client) return;
      setBadge($("conn"), "reconnecting", everConnected ? "reconnecting…" : "connecting…");
    });
    c.on("close", function () {
      if (c !== client) return;
      if (connected) setBadge($("conn"), "reconnecting", "disconnected, reconnecting…");
      connected = false;
      subscribed = false;
      renderWriter();
      renderActs();
    });
    c.on("error", function (err) {
      if (c !== client) return;
      var code = err && err.code, msg = String(err && err.message || err);
      $("conn").title = msg;
      if (code === 4 || code === 5 ||
          /not authori[sz]ed|bad user ?name or password/i.test(msg)) {
        c.end(true);
        connected = false;
        subscribed = false;
        askLogin(login.username ? "The broker refused this login (" + msg.replace(/^Connection refused: /, "") + ")." :
          "The broker needs a login.");
      }
    });
    c.on("message", function (topic, payload, packet) {
      if (c !== client) return;
      var msg;
      try { msg = JSON.parse(payload); } catch (e) { return; }
      if (!msg || typeof msg !== "object") return;
      if (topic === T_STATUS) onStatus(msg, packet && packet.retain);
      else if (topic === T_REJECTED) onRejected(msg);
      else if (topic.indexOf(T_EVENTS) === 0) onEvent(topic.slice(T_EVENTS.length), msg);
      else if (topic.indexOf(T_JOBEV) === 0) jobs.onEvent(msg);
      else if (topic.indexOf(T_REPLY) === 0) onReply(topic, msg);
      else if (topic === T_PROBE) setOperator(true);
    });
  }

  function askLogin(why) {
    setBadge($("conn"), "down", "login needed");
    setOperator(false);
    $("login-why").textContent = why + (location.protocol === "https:" || /^wss:/.test(BROKER) ? "" :
      " This page came over plain http: the password crosses the network unencrypted.");
    $("login").hidden = false;
    $("login-user").value = login.username;
    $("login-pass").value = "";
    (login.username ? $("login-pass") : $("login-user")).focus();
  }

  $("login").addEventListener("submit", function (e) {
    e.preventDefault();
    login.username = $("login-user").value;
    login.password = $("login-pass").value;
    $("login-pass").value = "";
    setOperator(false);            /* another login: its rights are not known yet */
    $("login").hidden = true;
    connect();
  });

  /* Everything that must be asked again after a reconnect or the writer's return. */
  function catchUp() {
    if (!subscribed) return;
    if (sel.id !== null && !loader.state.loading) loader.load();   /* first: the writer answers in order */
    loadBuild();
    loadAttempts();
    loadBuilds();
    loadRejections();
    loadScheduled();
    jobs.load();
  }

  /* ---- named queries: one reply topic per request ---- */

  var queries = {}, querySeq = 0;

  function runQuery(name, qparams, cb) {
    var topic = T_REPLY + (++querySeq);
    queries[topic] = {
      cb: cb,
      timer: setTimeout(function () {
        delete queries[topic];
        cb({ query: name, error: "no answer within " + QUERY_TIMEOUT_MS / 1000 + " s (is the writer online?)" });
      }, QUERY_TIMEOUT_MS)
    };
    if (!client) return;
    client.publish(T_QUERY, JSON.stringify({ query: name, params: qparams, reply_to: topic }), { qos: 1 });
  }

  /* A read-only command on PREFIX/admin (the Jobs view's `workers`), answered as a
   * query is: the answer object to cb, with "error" when there is none in time. */
  function runAdmin(cmd, body, cb) {
    var topic = T_REPLY + (++querySeq), req = { cmd: cmd, reply_to: topic };
    Object.keys(body || {}).forEach(function (k) { req[k] = body[k]; });
    queries[topic] = {
      cb: cb, admin: true,
      timer: setTimeout(function () {
        delete queries[topic];
        cb({ cmd: cmd, error: "no answer within " + QUERY_TIMEOUT_MS / 1000 + " s (is the writer online?)" });
      }, QUERY_TIMEOUT_MS)
    };
    if (!client) return;
    client.publish(PREFIX + "/admin", JSON.stringify(req), { qos: 1 });
  }

  function onReply(topic, msg) {
    if (topic.indexOf(T_ACT) === 0) {
      var a = acts.answer(topic.slice(T_ACT.length), msg);
      if (a && a.kind === "cancel" && subscribed) loadScheduled();
      if (a && a.kind === "cancel_build" && subscribed) loadBuild();
      if (a && /^(job|queue)_/.test(a.kind) && subscribed) jobs.load();
      return;
    }
    var q = queries[topic];
    if (!q) return;            /* late answer to a query given up on */
    delete queries[topic];
    clearTimeout(q.timer);
    if (!msg.error && !q.admin && !Array.isArray(msg.rows)) msg.error = "malformed answer";
    q.cb(msg);
  }

  /* A new connection: answers to the old one's queries will not come. */
  function cancelQueries() {
    Object.keys(queries).forEach(function (t) { clearTimeout(queries[t].timer); });
    queries = {};
    builds.loading = false;
    loader.dropped();
    rej.loading = false;
    sched.loading = false;
    jobs.dropped();
  }

  /* ---- writer status ---- */

  var writer = { last: null, full: null, seenAt: null };

  function onStatus(s, retained) {
    var wasOnline = writer.last && writer.last.state === "online";
    writer.last = s;
    writer.seenAt = retained ? null : new Date();
    jobs.onStatus(s);
    if ("applied" in s) {
      /* a scheduled write stored or cancelled, or (while some wait) applied or rejected:
       * the list may have changed */
      var keys = sched.total ? ["scheduled", "cancelled", "applied", "rejected"] : ["scheduled", "cancelled"];
      var moved = writer.full && keys.some(function (k) { return writer.full[k] !== s[k]; });
      writer.full = s;
      if (moved && subscribed) loadScheduled();
    }
    renderWriter();
    if (s.state === "online" && !wasOnline && !retained && subscribed) {
      /* back online (a retained status comes with the subscription, which already
       * asked): queries sent while it was away may never be answered, ask again */
      cancelQueries();
      catchUp();
    }
  }

  function renderWriter() {
    var s = writer.last, badge = $("writer-state");
    if (!s) {
      setBadge(badge, "unknown", "no status yet");
    } else if (!connected) {
      setBadge(badge, "unknown", (s.state || "unknown") + " (last known)");
    } else if (s.state === "online" && s.paused === true) {
      setBadge(badge, "paused", "paused");
    } else {
      setBadge(badge, s.state === "online" || s.state === "offline" ? s.state : "unknown", show(s.state));
    }
    $("writer-paused").hidden = !(connected && s && s.state === "online" && s.paused === true);
    renderWriterActs();
    var since = "";
    if (s && s.state === "online" && s.since)
      since = "up since " + timeOf(s.since) + " (" + ago(Date.now() - new Date(s.since).getTime()) + ")";
    else if (s && writer.seenAt)
      since = "since " + clock(writer.seenAt) + " (" + ago(Date.now() - writer.seenAt.getTime()) + ")";
    $("writer-since").textContent = since;
    $("writer-version").textContent = s && s.version ? "v" + show(s.version) : "";
    var f = writer.full;
    ["applied", "rejected", "duplicates", "commits", "pending"].forEach(function (k) {
      $("c-" + k).textContent = f && k in f ? show(f[k]) : "–";
    });
    $("c-last_commit_ms").textContent = f && typeof f.last_commit_ms === "number" ?
      f.last_commit_ms.toFixed(f.last_commit_ms < 10 ? 2 : 0) + " ms" : "–";
    $("counters").classList.toggle("stale", !s || s.state !== "online" || !connected);
    var err = s && s.error;
    $("writer-error").hidden = !err;
    $("writer-error-text").textContent = err ? show(err) : "";
    renderBuildsNote();
    renderLogHead();
  }
  setInterval(renderWriter, 10000);   /* keeps "since (… ago)" current */

  /* ---- actions: an operator's (act.js keeps them, sends them again until answered) ----
   * Shown to a login whose message on PREFIX/operator/CLIENT_ID came back (at each
   * connection, right behind its subscriptions): the broker lets it publish and read
   * there, which conf/secure/acl grants the page's operators (ops-web) and not the web
   * role. That is the broker's own answer to "may this login act": a viewer sees no
   * action, and what it could publish anyway the broker drops. On an open broker
   * (mosquitto.conf.example: one trusted machine, no logins) every client may pause the
   * writer: the page offers the actions there too. */

  var acts = mosqliteActions({
    prefix: PREFIX,
    key: "mosqlite-actions " + BROKER + " " + PREFIX,
    ready: function () { return connected && operator && !!client; },
    send: function (topic, text, acked) { return !!client && client.publish(topic, text, { qos: 1 }, acked); },
    replyTo: function (id) { return T_ACT + id; },
    changed: function () { renderActs(); renderWriterActs(); renderScheduled(); renderLogHead(); if (jobs) jobs.render(); }
  });
  var jobs = mosqliteJobs({      /* the Jobs view (jobs.js) */
    query: runQuery, admin: runAdmin, acts: acts,
    online: function () { return subscribed; },
    operator: function () { return operator && connected; },
    openBuild: function (id) { selectBuild(id); $("log").scrollIntoView({ block: "start" }); }
  });
  var armed = { id: null, timer: null };   /* a cancel clicked once, waiting for its confirmation */

  function setOperator(may) {
    var was = operator;
    operator = may;
    $("role").hidden = !may;
    $("role").title = may ? "This login may act: pause and resume the writer, cancel scheduled writes and running builds." : "";
    renderWriterActs();
    renderLogHead();
    if (was !== may) { renderScheduled(); jobs.render(); if (may) jobs.workers(); }
    renderActs();
    if (may) acts.resend();        /* at each connection's echo: what is unanswered goes now */
  }

  function renderWriterActs() {
    var s = writer.last, on = operator && connected && !!s && s.state === "online";
    var p = acts.pendingFor("pause"), r = acts.pendingFor("resume");
    $("act-pause").hidden = !on || s.paused === true;
    $("act-resume").hidden = !on || s.paused !== true;
    $("act-pause").disabled = !!p;
    $("act-resume").disabled = !!r;
    $("act-pause").textContent = p ? "Pausing…" : "Pause writer";
    $("act-resume").textContent = r ? "Resuming…" : "Resume writer";
  }
  $("act-pause").addEventListener("click", function () { acts.add("pause"); });
  $("act-resume").addEventListener("click", function () { acts.add("resume"); });

  function actState(a) {
    if (a.state === "applied") return "applied: " + a.text;
    if (a.state === "refused") return "refused by the writer: " + a.text;
    if (a.state === "replaced") return a.text;
    if (!connected) return "not answered yet: sent again when the page is connected";
    if (!operator) return "not answered yet: sent again once logged in as an operator";
    return (a.acked ? "sent, waiting for the writer's answer" : "sending") + (a.sent > 1 ? " (sent " + a.sent + " times)" : "");
  }

  function renderActs() {
    var ol = $("act-list"), all = acts.list();
    ol.textContent = "";
    for (var i = all.length - 1; i >= 0; i--) {
      var a = all[i], li = el("li", "act-item");
      li.setAttribute("data-id", a.id);
      li.setAttribute("data-kind", a.kind);
      li.setAttribute("data-state", a.state);
      li.setAttribute("data-acked", String(!!a.acked));
      li.setAttribute("data-sent", String(a.sent));
      var t = el("span", "ev-time", clock(new Date(a.at)));
      t.title = "id " + a.id;
      li.appendChild(t);
      li.appendChild(el("span", "act-what", acts.what(a)));
      li.appendChild(el("span", "act-state", actState(a)));
      if (a.state !== "pending") {
        var x = el("button", "act-dismiss", "×");
        x.type = "button";
        x.title = "Remove from this list";
        x.setAttribute("data-dismiss", a.id);
        li.appendChild(x);
      }
      ol.appendChild(li);
    }
    ol.hidden = !all.length;
  }
  $("act-list").addEventListener("click", function (e) {
    var b = e.target.closest("button[data-dismiss]");
    if (b) acts.dismiss(b.getAttribute("data-dismiss"));
  });

  /* The Scheduled list's Cancel: a first click asks to confirm (the cancel cannot be
   * undone), a second within 5 s cancels. */
  function schedCancelCell(id) {
    var td = el("td", "sched-act"), p = acts.pendingFor("cancel", id), b = el("button", "act");
    b.type = "button";
    b.setAttribute("data-cancel", id);
    if (p) { b.disabled = true; b.textContent = "Cancelling…"; }
    else if (armed.id === id) { b.className = "act armed"; b.textContent = "Confirm cancel"; }
    else b.textContent = "Cancel";
    td.appendChild(b);
    return td;
  }
  $("sched-list").addEventListener("click", function (e) {
    var b = e.target.closest("button[data-cancel]");
    if (!b || !operator) return;
    var id = b.getAttribute("data-cancel");
    clearTimeout(armed.timer);
    if (armed.id === id) {
      armed.id = null;
      acts.add("cancel", id);
      return;
    }
    armed.id = id;
    armed.timer = setTimeout(function () { armed.id = null; renderScheduled(); }, 5000);
    renderScheduled();
  });

  /* ---- events ---- */

  function onEvent(table, ev) {
    var rows = Array.isArray(ev.rows) ? ev.rows : [];
    var t = typeof ev.table === "string" ? ev.table : table;
    var op = typeof ev.op === "string" ? ev.op : "?";
    if (t === "builds") onBuildsEvent(op, rows, !!ev.truncated);
    if (t === "build_logs") { loader.onEvent(op, rows, !!ev.truncated); if (op !== "delete") onLogLines(rows); }
    eventsAdd(t, op, rows, !!ev.truncated);
  }

  var OPS = ["insert", "upsert", "update", "delete"];
  var evs = { items: [], held: [], paused: false, table: "", tables: new Set() };
  var evCap = parseInt(params.get("cap"), 10) || 500;
  $("ev-cap").value = evCap;

  function evNode(it) {
    var li = el("li", "ev");
    li.setAttribute("data-table", it.table);
    li.appendChild(el("span", "ev-time", clock(it.at)));
    li.appendChild(el("span", "op" + (OPS.indexOf(it.op) >= 0 ? " op-" + it.op : ""), it.op));
    li.appendChild(el("span", "ev-table", it.table));
    var kv = el("span", "kv");
    Object.keys(it.row).forEach(function (k) {
      var pair = el("span", "pair");
      pair.appendChild(el("span", "k", k));
      var val = it.row[k];
      pair.appendChild(typeof val === "string" ? ansiInto(el("span", "v"), val) : el("span", "v", show(val)));
      kv.appendChild(pair);
    });
    li.appendChild(kv);
    if (it.truncated) li.appendChild(el("span", "trunc", "more rows in this commit not shown"));
    return li;
  }

  function eventsAdd(table, op, rows, truncated) {
    if (!evs.tables.has(table)) {
      evs.tables.add(table);
      var o = el("option", null, table);
      o.value = table;
      $("ev-table").appendChild(o);
    }
    var at = new Date(), items = rows.map(function (r, i) {
      return { at: at, table: table, op: op, row: r && typeof r === "object" ? r : { value: r },
               truncated: truncated && i === rows.length - 1, node: null };
    });
    if (evs.paused) {
      Array.prototype.push.apply(evs.held, items);
      if (evs.held.length > evCap) evs.held.splice(0, evs.held.length - evCap);
      $("ev-pause").textContent = "Resume (" + evs.held.length + " new)";
      return;
    }
    evShow(items);
  }

  function evShow(items) {
    var frag = document.createDocumentFragment();
    Array.prototype.push.apply(evs.items, items);      /* kept oldest first */
    for (var i = items.length - 1; i >= 0; i--) {      /* shown newest first */
      var it = items[i];
      if (!evs.table || evs.table === it.table) {
        it.node = evNode(it);
        frag.appendChild(it.node);
      }
    }
    var list = $("ev-list");
    list.insertBefore(frag, list.firstChild);
    evTrim();
  }

  function evTrim() {
    while (evs.items.length > evCap) {
      var it = evs.items.shift();
      if (it.node) it.node.remove();
    }
  }

  function evRender() {
    var list = $("ev-list"), frag = document.createDocumentFragment();
    list.textContent = "";
    for (var i = evs.items.length - 1; i >= 0; i--) {
      var it = evs.items[i];
      it.node = null;
      if (!evs.table || evs.table === it.table) frag.appendChild(it.node = evNode(it));
    }
    list.appendChild(frag);
  }

  $("ev-table").addEventListener("change", function () { evs.table = this.value; evRender(); });
  $("ev-pause").addEventListener("click", function () {
    evs.paused = !evs.paused;
    this.setAttribute("aria-pressed", String(evs.paused));
    if (evs.paused) { this.textContent = "Resume"; return; }
    this.textContent = "Pause";
    var held = evs.held;
    evs.held = [];
    /* held items were pushed oldest first; evShow wants one batch in that order */
    evShow(held);
  });
  $("ev-cap").addEventListener("change", function () {
    var n = parseInt(this.value, 10);
    if (!(n >= 1)) { this.value = evCap; return; }
    evCap = n;
    evTrim();
  });

  /* ---- rejections: the newest kept in mosqlite_rejected, then live ----
   * The list is rebuilt from the table on every (re)connect; rejections that arrive
   * while that query runs are held, and added unless the table already had them. */

  var rej = { loading: false, held: [], gen: 0, loaded: false, error: null };

  function rejKey(topic, error, payload) {
    return show(topic) + "\u0000" + show(error) + "\u0000" + show(payload).slice(0, 300);
  }

  function rejNode(r) {
    var li = el("li", "rej");
    var head = el("div", "rej-head");
    var at = r.at ? new Date(r.at) : new Date();
    var t = el("span", "ev-time", r.at ? timeOf(r.at) : clock(at));
    if (r.at) t.title = show(r.at);
    head.appendChild(t);
    head.appendChild(el("span", "rej-error", show(r.error)));
    li.appendChild(head);
    var meta = el("div", "rej-meta muted");
    meta.appendChild(el("span", null, "topic " + show(r.topic)));
    if (r.id !== null && r.id !== undefined) meta.appendChild(el("span", null, "id " + show(r.id)));
    li.appendChild(meta);
    li.appendChild(el("pre", "rej-payload", show(r.payload)));
    return li;
  }

  function rejAdd(r) {            /* newest first */
    var list = $("rej-list");
    list.insertBefore(rejNode(r), list.firstChild);
    while (list.children.length > REJ_CAP) list.lastChild.remove();
    $("rej-count").textContent = "(" + list.children.length + (list.children.length >= REJ_CAP ? "+" : "") + ")";
  }

  function onRejected(r) {
    if (rej.loading) { rej.held.push(r); return; }
    rejAdd(r);
  }

  function loadRejections() {
    var gen = ++rej.gen, rows = [], pages = 0;
    rej.loading = true;
    function page(before) {
      runQuery("rejections", { before: before }, function (r) {
        if (gen !== rej.gen) return;
        if (!r.error) {
          Array.prototype.push.apply(rows, r.rows);
          if (r.rows.length >= 10 && ++pages < REJ_PAGES) { page(r.rows[r.rows.length - 1].id); return; }
        }
        rej.loading = false;
        rej.error = r.error || null;
        var held = rej.held, seen = new Map();
        rej.held = [];
        $("rej-list").textContent = "";
        for (var i = rows.length - 1; i >= 0; i--) {   /* oldest first: rejAdd puts each on top */
          var x = rows[i];
          rejAdd({ at: x.at, topic: x.topic, id: x.req_id, error: x.error, payload: x.payload });
          var k = rejKey(x.topic, x.error, x.payload);
          seen.set(k, (seen.get(k) || 0) + 1);
        }
        held.forEach(function (h) {
          var k = rejKey(h.topic, h.error, h.payload);
          if (seen.get(k)) seen.set(k, seen.get(k) - 1); else rejAdd(h);
        });
        if (!$("rej-list").children.length) $("rej-count").textContent = "";
        $("rej-note").textContent = rej.error ? "Earlier rejections could not be read (" + rej.error + "); new ones appear here." :
          "Requests the writer refused, newest first: the latest kept in mosqlite_rejected, then new ones as they happen.";
        $("rej-note").classList.toggle("error", !!rej.error);
      });
    }
    page(MAX_ID);
  }
  /* ---- scheduled writes: the named query `scheduled`, asked again when the writer's
   * counters move or a due time passes ---- */

  var sched = { loading: false, again: false, rows: [], total: 0, error: null };

  function loadScheduled() {
    if (sched.loading) { sched.again = true; return; }
    sched.loading = true;
    runQuery("scheduled", {}, function (r) {
      sched.loading = false;
      sched.error = r.error || null;
      if (!r.error) {
        sched.rows = r.rows;
        sched.total = r.rows.length ? Number(r.rows[0].total) || r.rows.length : 0;
      }
      renderScheduled();
      if (sched.again) { sched.again = false; loadScheduled(); }
    });
  }

  function untilText(ms) {
    return ms <= 0 ? "due" : "in " + span(ms);
  }

  function renderScheduled() {
    var list = $("sched-list"), now = Date.now();
    list.textContent = "";
    sched.rows.forEach(function (row) {
      var due = new Date(row.due).getTime();
      var tr = el("tr", due <= now ? "sched-due" : null);
      tr.setAttribute("data-id", show(row.id));
      var td = el("td", null, timeOf(row.due));
      td.title = show(row.due) + " (received " + show(row.received) + ")";
      tr.appendChild(td);
      td = el("td", "sched-in", untilText(due - now));
      td.setAttribute("data-due", String(due));
      tr.appendChild(td);
      tr.appendChild(el("td", null, show(row.id)));
      var topic = show(row.topic), table = topic.slice((PREFIX + "/write/").length);
      tr.appendChild(el("td", null, topic.indexOf(PREFIX + "/write/") === 0 ? table : "(ops)"));
      if (operator) tr.appendChild(schedCancelCell(show(row.id)));
      list.appendChild(tr);
      var req = el("tr", "sched-req-row");
      td = el("td", "sched-req", show(row.payload));
      td.colSpan = operator ? 5 : 4;
      req.appendChild(td);
      list.appendChild(req);
    });
    $("sched-act-head").hidden = !operator;
    $("sched-count").textContent = sched.total ? "(" + sched.total + ")" : "";
    var note = sched.error ? "Scheduled writes could not be read (" + sched.error + ")." :
      !sched.total ? "Nothing scheduled: requests with \"at\" or \"delay_ms\" wait here until they are due." :
      sched.total > sched.rows.length ? "The next " + sched.rows.length + " of " + sched.total + ", the next due first." :
      "Writes waiting for their time, the next due first.";
    $("sched-note").textContent = note;
    $("sched-note").classList.toggle("error", !!sched.error);
  }

  /* The countdowns; a due time that has passed means the list is about to change. */
  setInterval(function () {
    var now = Date.now(), passed = false;
    document.querySelectorAll("#sched-list td.sched-in").forEach(function (td) {
      var due = Number(td.getAttribute("data-due"));
      if (due <= now && td.textContent !== "due") passed = true;
      td.textContent = untilText(due - now);
      td.parentNode.classList.toggle("sched-due", due <= now);
    });
    if (passed && subscribed) setTimeout(loadScheduled, 500);
  }, 1000);

  /* ---- recent builds ----
   * recent_builds gives a page of BUILDS_PAGE builds, the newest started first, before a
   * cursor (the last row of the page before) and through the filter (a status, a part of
   * the name); "Older builds" asks for the next page. Builds whose lines are in build_logs
   * with no row in builds (the plain log pipe writes none) come too, marked "log only".
   * Events update the rows and add new builds; events during the first page's query wait
   * for it. While the writer is offline or does not answer, the note says so, and the
   * list is asked for again when it is back. */

  var builds = { rows: new Map(), loading: false, buffer: [], error: null, loaded: false, retry: null, backoff: 1000,
                 again: false, gen: 0, more: false, cursor: null, older: false, olderError: null,
                 status: "", name: "", asked: new Set() };

  function buildsParams(cursor) {
    return { before_at: cursor ? show(cursor.started_at) : "9999", before_id: cursor ? Number(cursor.id) : MAX_ID,
             status: builds.status, name: builds.name, limit: BUILDS_PAGE };
  }

  function loadBuilds() {
    var gen = ++builds.gen;
    clearTimeout(builds.retry);
    if (!builds.loading) builds.buffer = [];
    builds.loading = true;
    builds.older = false;
    runQuery("recent_builds", buildsParams(null), function (r) {
      if (gen !== builds.gen) return;
      builds.loading = false;
      var buf = builds.buffer;
      builds.buffer = [];
      if (r.error) {
        builds.error = r.error;
        builds.backoff = Math.min(30000, builds.backoff * 2);
        builds.retry = setTimeout(function () { if (subscribed) loadBuilds(); }, builds.backoff);
      } else {
        builds.backoff = 1000;
        builds.error = null;
        builds.loaded = true;
        builds.rows = new Map();
        builds.cursor = null;
        pageIn(r.rows);
      }
      buf.forEach(function (e) { buildsApply(e.op, e.rows); });
      renderBuilds();
      if (builds.again) { builds.again = false; loadBuilds(); }
    });
  }

  /* A page of the query: rows the events brought meanwhile are newer, and kept. */
  function pageIn(rows) {
    rows.forEach(function (row) { if (!builds.rows.has(Number(row.id))) builds.rows.set(Number(row.id), row); });
    builds.more = rows.length >= BUILDS_PAGE;
    if (rows.length) builds.cursor = rows[rows.length - 1];
  }

  function loadOlder() {
    if (builds.loading || builds.older || !builds.more || !builds.cursor) return;
    var gen = builds.gen;
    builds.older = true;
    renderBuilds();
    runQuery("recent_builds", buildsParams(builds.cursor), function (r) {
      if (gen !== builds.gen) return;
      builds.older = false;
      builds.olderError = r.error || null;
      if (!r.error) pageIn(r.rows);
      renderBuilds();
    });
  }

  /* a before b in the list: started later, or at the same time with a bigger id */
  function newer(a, b) {
    var x = show(a.started_at), y = show(b.started_at);
    return x !== y ? x > y : Number(a.id) > Number(b.id);
  }
  /* Within the pages loaded so far (a row older than them waits for "Older builds"). */
  function inPages(b) { return !builds.more || !builds.cursor || newer(b, builds.cursor); }

  function matches(b) {
    var none = b.status === null || b.status === undefined;
    if (builds.status && (builds.status === "none" ? !none : b.status !== builds.status)) return false;
    return !builds.name || (typeof b.name === "string" && b.name.toLowerCase().indexOf(builds.name.toLowerCase()) >= 0);
  }

  function onBuildsEvent(op, rows, truncated) {
    if (builds.loading) {
      builds.buffer.push({ op: op, rows: rows });
      if (truncated) builds.again = true;
      return;
    }
    buildsApply(op, rows);
    renderBuilds();
    if (truncated) loadBuilds();
  }

  function buildsApply(op, rows) {
    if (op === "log") { rows.forEach(logOnly); return; }
    rows.forEach(function (row) {
      if (!row || row.id === undefined) return;
      var id = Number(row.id);
      if (sel.id === id) {
        sel.row = op === "delete" ? null : Object.assign({}, sel.row, row);
        if (sel.row) newAttempt(sel.row);
      }
      if (op === "delete") { builds.rows.delete(id); return; }
      var old = builds.rows.get(id), b = Object.assign({}, old, row);
      if (old || inPages(b)) builds.rows.set(id, b);
    });
  }

  /* Lines of a build the list does not have: its row is asked for (once); a build with
   * none is shown as "log only", started at this line. */
  function onLogLines(rows) {
    if (!builds.loaded || builds.loading) { builds.buffer.push({ op: "log", rows: rows }); return; }
    rows.forEach(logOnly);
  }
  function logOnly(r) {
    var id = Number(r && r.build_id);
    if (!(id >= 0) || builds.rows.has(id) || builds.asked.has(id)) return;
    builds.asked.add(id);
    runQuery("build", { id: id }, function (a) {
      if (a.error || builds.rows.has(id)) { builds.asked.delete(id); return; }
      var b = a.rows.length ? a.rows[0] : { id: id, name: null, status: null, started_at: r.ts || new Date().toISOString(),
                                             finished_at: null, exit_code: null, duration_ms: null };
      if (inPages(b)) { builds.rows.set(id, b); renderBuilds(); }
    });
  }

  function statusCell(b) {
    var st = el("td", "status"), none = b.status === null || b.status === undefined;
    var badge = el("span", "badge", none ? "log only" : show(b.status));
    badge.setAttribute("data-state", none ? "none" : show(b.status));
    if (none) badge.title = "lines in build_logs, no row in builds (the plain log pipe writes none)";
    st.appendChild(badge);
    if (b.exit_code !== null && b.exit_code !== undefined) st.appendChild(el("span", "exit muted", " exit " + show(b.exit_code)));
    return st;
  }

  function buildRowNode(b) {
    var id = Number(b.id), tr = el("tr");
    tr.setAttribute("data-id", show(id));
    tr.tabIndex = 0;
    if (id === sel.id) tr.className = "selected";
    tr.appendChild(el("td", "num", show(id)));
    tr.appendChild(b.name === null || b.name === undefined ? el("td", "name muted", "(no build row)") : el("td", "name", show(b.name)));
    tr.appendChild(statusCell(b));
    var started = el("td", "wide time", timeOf(b.started_at));
    started.title = show(b.started_at);
    tr.appendChild(started);
    tr.appendChild(el("td", "wide num took", took(b)));
    return tr;
  }

  function renderBuilds() {
    var list = Array.from(builds.rows.values()).filter(matches).sort(function (a, b) { return newer(a, b) ? -1 : 1; });
    var tbody = $("builds-list"), frag = document.createDocumentFragment();
    list.forEach(function (b) { frag.appendChild(buildRowNode(b)); });
    tbody.textContent = "";
    tbody.appendChild(frag);
    renderBuildsNote(list.length);
    var older = $("builds-older");
    older.hidden = !builds.loaded || !builds.more;
    older.disabled = builds.older;
    older.textContent = builds.older ? "Loading older builds…" :
      builds.olderError ? "Older builds (the last try failed: " + builds.olderError + ")" : "Older builds";
    renderLogHead();
  }

  function writerOffline() { return connected && !!writer.last && writer.last.state === "offline"; }

  function renderBuildsNote(n) {
    var note = $("builds-note"), text, bad = true;
    if (n === undefined) n = $("builds-list").children.length;
    if ((!builds.loaded || builds.error) && writerOffline())
      text = "The writer is offline, not answering: the builds load when it is back.";
    else if (builds.error && /^no answer/.test(builds.error))
      text = "The writer is not answering (" + builds.error.replace(/ \(.*\)$/, "") + "); asking again.";
    else if (builds.error) text = "Could not load builds: " + builds.error;
    else {
      bad = false;
      text = !builds.loaded ? "loading…" : n ? "" : builds.status || builds.name ? "No builds match." : "No builds yet.";
    }
    note.textContent = text;
    note.classList.toggle("error", bad);
    note.setAttribute("data-state", bad ? "down" : builds.loaded ? "loaded" : "loading");
  }

  function pickBuild(e) {
    var tr = e.target.closest("tr[data-id]");
    if (!tr) return;
    if (e.type === "keydown" && e.key !== "Enter" && e.key !== " ") return;
    e.preventDefault();
    selectBuild(Number(tr.getAttribute("data-id")));
  }
  $("builds-list").addEventListener("click", pickBuild);
  $("builds-list").addEventListener("keydown", pickBuild);
  $("builds-older").addEventListener("click", loadOlder);
  $("builds-status").addEventListener("change", function () { builds.status = this.value; refilter(); });
  var nameTimer = null;
  $("builds-name").addEventListener("input", function () {
    var v = this.value.trim();
    clearTimeout(nameTimer);
    nameTimer = setTimeout(function () { if (v !== builds.name) { builds.name = v; refilter(); } }, 250);
  });
  function refilter() {
    builds.loaded = false;
    builds.rows = new Map();
    builds.more = false;
    renderBuilds();
    if (subscribed) loadBuilds();
  }

  /* A running build's "took" goes on counting; an ended one's stays put. */
  setInterval(function () {
    document.querySelectorAll("#builds-list tr[data-id]").forEach(function (tr) {
      var b = builds.rows.get(Number(tr.getAttribute("data-id")));
      var c = tr.querySelector(".took");
      if (b && c && b.status === "running") c.textContent = took(b);
    });
    renderLogHead();
  }, 1000);

  /* ---- a build's log: logload.js reads it into logview.js's view; here, which build,
   * its row (the query `build`, then events), #L120 and the head ---- */

  /* attempt: the one shown (null until known); latest: it is the build's latest, and a new
   * run is shown when it starts; attempts: build_attempts' rows, the latest first. */
  var sel = { id: null, row: null, known: false, gen: 0, attempt: null, latest: true, attempts: [], total: 0, agen: 0,
              attemptsKnown: false };
  var wantLine = null;
  var view = mosqliteLogView($("log-lines"), {
    time: function (ts) { return timeOf(ts).replace(/^.* /, ""); },
    onchange: function () { renderLogTools(); }
  });
  var loader = mosqliteLogLoader({
    query: runQuery, view: view,
    online: function () { return subscribed; },
    changed: function () { renderLogHead(); },
    shown: function () { goWanted(); }
  });

  function selectBuild(id) {
    if (!(id >= 0)) return;
    sel.id = id;
    sel.row = null;
    sel.known = false;
    var u = new URL(location.href);
    if (Number(u.searchParams.get("build")) !== id) {
      u.searchParams.set("build", id);
      u.hash = "";
      wantLine = null;
    }
    history.replaceState(null, "", u);
    sel.attempt = null;
    sel.latest = true;
    sel.attempts = [];
    sel.total = 0;
    sel.attemptsKnown = false;
    loader.open(id, null);
    if (subscribed) { loadBuild(); loadAttempts(); }
    renderBuilds();
  }

  /* The attempt to show: the one picked, else the row's (the latest run), else the
   * latest in the log (a build with no row), else 0. */
  function chooseAttempt() {
    if (sel.attempt !== null || !sel.known) return;
    var a = sel.row && sel.row.attempt !== null && sel.row.attempt !== undefined ? Number(sel.row.attempt) :
      sel.attempts.length ? Number(sel.attempts[0].attempt) : sel.attemptsKnown ? 0 : null;
    if (a === null) return;
    sel.attempt = a;
    loader.open(sel.id, a);
    renderLogHead();
  }
  /* The row of the build shown says another attempt began: shown, when the latest was. */
  function newAttempt(row) {
    var a = row.attempt === null || row.attempt === undefined ? null : Number(row.attempt);
    if (a === null || sel.attempt === null || a === sel.attempt || !sel.latest) return;
    sel.attempt = a;
    loader.open(sel.id, a);
    if (subscribed) loadAttempts();
  }
  function loadAttempts() {
    if (sel.id === null) return;
    var id = sel.id, gen = ++sel.agen;
    runQuery("build_attempts", { build_id: id }, function (r) {
      if (gen !== sel.agen || r.error) return;
      sel.attempts = r.rows;
      sel.total = r.rows.length ? Number(r.rows[0].total) || r.rows.length : 0;
      sel.attemptsKnown = true;
      chooseAttempt();
      renderLogHead();
    });
  }
  /* Attempts numbered 1.. in the order they were run: the log's, and the row's latest if
   * it has no line yet. */
  function attemptList() {
    var list = sel.attempts.map(function (x) { return { attempt: Number(x.attempt), at: x.first_ts }; });
    var total = sel.total || list.length, latest = sel.row && sel.row.attempt !== null && sel.row.attempt !== undefined ?
      Number(sel.row.attempt) : null;
    if (latest !== null && !list.some(function (x) { return x.attempt === latest; }) &&
        (!list.length || latest > list[0].attempt)) {
      list.unshift({ attempt: latest, at: sel.row.started_at });
      total++;
    }
    if (sel.attempt !== null && !list.some(function (x) { return x.attempt === sel.attempt; })) {
      list.push({ attempt: sel.attempt, at: null });
    }
    list.sort(function (x, y) { return y.attempt - x.attempt; });
    return list.map(function (x, i) { x.n = total - i; return x; });
  }
  $("log-attempt").addEventListener("change", function () {
    var a = Number(this.value);
    if (!(a === a) || a === sel.attempt) return;
    var list = attemptList();
    sel.latest = !!list.length && list[0].attempt === a;
    sel.attempt = a;
    loader.open(sel.id, a);
    renderLogHead();
  });

  /* The selected build's row, which the list may not hold (an older or filtered one). */
  function loadBuild() {
    if (sel.id === null) return;
    var id = sel.id, gen = ++sel.gen;
    runQuery("build", { id: id }, function (r) {
      if (gen !== sel.gen || r.error) return;
      sel.known = true;
      sel.row = r.rows.length ? r.rows[0] : null;
      if (sel.row) newAttempt(sel.row);
      /* the list's copy too: it is the one shown (a row read again after a refused cancel) */
      if (sel.row && builds.rows.has(id)) builds.rows.set(id, Object.assign({}, builds.rows.get(id), sel.row));
      chooseAttempt();
      renderBuilds();
    });
  }
  function buildOf(id) { return builds.rows.get(id) || (sel.id === id ? sel.row : null) || null; }

  /* #L120: the line to show and highlight, once it is loaded. */
  function readHash() {
    var m = /^#L(\d+)$/.exec(location.hash);
    wantLine = m ? Number(m[1]) : null;
    goWanted();
  }
  function goWanted() {
    if (wantLine !== null && view.goLine(wantLine)) wantLine = null;
  }
  window.addEventListener("hashchange", readHash);

  function renderLogHead() {
    var log = loader.state;
    if (sel.id === null) return;
    var b = buildOf(sel.id), ended = !!b && ENDED.indexOf(b.status) >= 0;
    $("log-title").textContent = "Build " + sel.id + (b && b.name !== null && b.name !== undefined ? " · " + show(b.name) : "");
    var st = $("log-status");
    st.hidden = !b;
    if (b) setBadge(st, b.status === null || b.status === undefined ? "none" : show(b.status),
                    b.status === null || b.status === undefined ? "log only" : show(b.status));
    var facts = [];
    if (b && b.exit_code !== null && b.exit_code !== undefined) facts.push("exit " + show(b.exit_code));
    var t = b ? took(b) : "";
    if (t) facts.push("took " + t);
    $("log-facts").textContent = facts.join(" · ");
    var n = view.size(), note = n + " line" + (n === 1 ? "" : "s");
    var none = log.live && sel.known && !b && log.lines === 0 && !n;
    if (view.state.dropped) note += " (" + view.state.dropped + " older ones not kept)";
    note = log.error ? "Could not load the log: " + log.error + "; retrying" :
      !log.live && writerOffline() ? "The writer is offline, not answering: the log loads when it is back." :
      !log.live ? note + " · loading…" :
      none ? "No such build: build " + sel.id + " has no row in builds and no log lines." :
      ended ? note : note + " · live";
    $("log-note").textContent = note;
    $("log-note").classList.toggle("error", !!log.error || none);
    var box = $("log");
    box.setAttribute("data-live", String(log.live));
    box.setAttribute("data-lines", String(n));
    box.setAttribute("data-build", none ? "none" : ended ? "ended" : b ? "running" : "unknown");
    if (log.firstMs !== null) box.setAttribute("data-first-ms", String(log.firstMs));
    if (log.allMs !== null) box.setAttribute("data-all-ms", String(log.allMs));
    $("log-tools").hidden = none;
    renderAttempts();
    renderLogCancel(b);
  }

  function renderAttempts() {
    var list = attemptList(), box = $("log-attempt");
    box.hidden = list.length < 2;
    box.setAttribute("data-attempts", String(list.length));
    var key = list.map(function (x) { return x.attempt + "/" + x.n + "/" + x.at; }).join(",") + "|" + sel.attempt;
    if (box.getAttribute("data-key") === key) return;
    box.setAttribute("data-key", key);
    box.textContent = "";
    list.forEach(function (x, i) {
      var o = el("option", null, "attempt " + x.n + (i === 0 ? " (latest)" : "") + (x.at ? " · " + timeOf(x.at) : ""));
      o.value = String(x.attempt);
      o.selected = x.attempt === sel.attempt;
      box.appendChild(o);
    });
    box.setAttribute("data-shown", String((list.filter(function (x) { return x.attempt === sel.attempt; })[0] || {}).n || ""));
  }

  /* Cancel build: an operator's, on a running build's latest attempt; a first click asks
   * to confirm, a second within 5 s cancels. */
  var armedBuild = { key: null, timer: null };
  function cancelTarget(b) {
    return b && b.status === "running" && b.attempt !== null && b.attempt !== undefined ? b.id + ":" + Number(b.attempt) : null;
  }
  function renderLogCancel(b) {
    var btn = $("log-cancel"), key = operator && connected ? cancelTarget(b) : null;
    btn.hidden = !key;
    if (!key) return;
    var p = acts.pendingFor("cancel_build", key);
    btn.disabled = !!p;
    btn.className = "act" + (armedBuild.key === key && !p ? " armed" : "");
    btn.textContent = p ? "Cancelling…" : armedBuild.key === key ? "Confirm cancel" : "Cancel build";
    btn.setAttribute("data-target", key);
  }
  $("log-cancel").addEventListener("click", function () {
    var key = this.getAttribute("data-target");
    if (!operator || !key) return;
    clearTimeout(armedBuild.timer);
    if (armedBuild.key === key) {
      armedBuild.key = null;
      acts.add("cancel_build", key);
      return;
    }
    armedBuild.key = key;
    armedBuild.timer = setTimeout(function () { armedBuild.key = null; renderLogHead(); }, 5000);
    renderLogHead();
  });

  /* ---- search, filter, follow, download ---- */

  var searchTimer = null;
  function renderLogTools() {
    var v = view.state;
    var c = !v.query ? "" : !v.hits.length ? "no match" :
      (v.hitAt >= 0 ? (v.hitAt + 1) + " of " : "") + v.hits.length + " line" + (v.hits.length === 1 ? "" : "s");
    $("find-count").textContent = c;
    $("find-prev").disabled = $("find-next").disabled = !v.hits.length;
    $("find-filter").checked = v.filter;   /* a jump to a line outside the filter ends it */
    var jump = $("log-jump");
    jump.hidden = v.stick;
    jump.textContent = v.unseen ? "↓ " + v.unseen + " new line" + (v.unseen === 1 ? "" : "s") : "↓ follow";
    renderLogHead();
  }
  $("find").addEventListener("input", function () {
    clearTimeout(searchTimer);
    var q = this.value;
    searchTimer = setTimeout(function () { view.search(q); }, view.size() > 20000 ? 150 : 40);
  });
  $("find").addEventListener("keydown", function (e) {
    if (e.key === "Enter") {
      e.preventDefault();
      clearTimeout(searchTimer);
      if (view.state.query !== this.value.toLowerCase()) view.search(this.value);
      view.step(e.shiftKey ? -1 : 1);
    } else if (e.key === "Escape") {
      this.value = "";
      view.search("");
    }
  });
  $("find-next").addEventListener("click", function () { view.step(1); });
  $("find-prev").addEventListener("click", function () { view.step(-1); });
  $("find-filter").addEventListener("change", function () { view.setFilter(this.checked); });
  $("log-jump").addEventListener("click", function () { view.follow(); });
  $("log-download").addEventListener("click", function () {
    var blob = new Blob([view.text()], { type: "text/plain;charset=utf-8" });
    var a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    var shown = $("log-attempt").getAttribute("data-shown");
    a.download = "build-" + sel.id + (shown && Number($("log-attempt").getAttribute("data-attempts")) > 1 ? "-attempt-" + shown : "") + ".log";
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(function () { URL.revokeObjectURL(a.href); }, 10000);
  });
  document.addEventListener("keydown", function (e) {      /* Ctrl+F / "/" : the log's search */
    if (sel.id === null || e.target === $("find")) return;
    if ((e.key === "f" && (e.ctrlKey || e.metaKey)) || (e.key === "/" && !/^(INPUT|TEXTAREA|SELECT)$/.test(e.target.tagName))) {
      e.preventDefault();
      $("find").focus();
      $("find").select();
    }
  });

  renderActs();     /* those kept from before a reload */
  readHash();
  var first = Number(params.get("build"));
  if (params.get("build") !== null && first >= 0) {
    var wanted = wantLine;
    selectBuild(first);
    wantLine = wanted;
  }
  connect();
})();
