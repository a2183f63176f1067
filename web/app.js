/*
 * app.js: the mosqlite page. It connects to the broker it was loaded from (MQTT over
 * WebSockets, ws://location.host/, or ?broker=), subscribes to PREFIX/status (the
 * writer's retained status), PREFIX/events/# (committed rows), PREFIX/rejected and a
 * reply topic of its own, and only once those subscriptions are in place runs the named
 * queries recent_builds and build_log. A build's log is the query's pages (after = last
 * id seen, until a short page) followed by the live build_logs rows that were buffered
 * meanwhile, merged by id: no gap, no duplicate. After a reconnect, a truncated event or
 * the writer coming back online, it asks again from the last id it has. Every value
 * from the database goes into the page as text (textContent), never as HTML.
 * Plain script, no modules: Mosquitto's HTTP server sends no Content-Type.
 */
(function () {
  "use strict";

  var params = new URLSearchParams(location.search);
  var PREFIX = params.get("prefix") || "mosqlite";
  var BROKER = params.get("broker") ||
    ((location.protocol === "https:" ? "wss://" : "ws://") + (location.host || "127.0.0.1:9001") + "/");
  var PAGE_SIZE = 1000;          /* build_log's LIMIT: a shorter page is the last one */
  var LOG_CAP = 50000;           /* log lines kept in the page */
  var REJ_CAP = 200;             /* rejections kept */
  var QUERY_TIMEOUT_MS = 8000;   /* a query unanswered by then is retried later */

  var T_STATUS = PREFIX + "/status";
  var T_REJECTED = PREFIX + "/rejected";
  var T_EVENTS = PREFIX + "/events/";
  var T_QUERY = PREFIX + "/query";
  var CLIENT_ID = "mosqlite-web-" + Math.random().toString(16).slice(2, 10);
  var T_REPLY = PREFIX + "/reply/" + CLIENT_ID + "/";

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

  /* An ISO time from the database as local HH:MM:SS (or the text as is). */
  function timeOf(iso) {
    if (iso === null || iso === undefined || iso === "") return "";
    var d = new Date(iso);
    if (isNaN(d.getTime())) return show(iso);
    var today = new Date();
    var t = clock(d);
    if (d.toDateString() !== today.toDateString())
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

  function duration(a, b) {
    var t0 = new Date(a).getTime(), t1 = b ? new Date(b).getTime() : Date.now();
    if (isNaN(t0) || isNaN(t1)) return "";
    return ago(t1 - t0);
  }

  function setBadge(node, state, text) {
    node.setAttribute("data-state", state);
    node.textContent = text;
  }

  $("broker").textContent = BROKER + (PREFIX !== "mosqlite" ? "  prefix " + PREFIX : "");
  $("broker").title = "client id " + CLIENT_ID;
  $("conn").setAttribute("data-client-id", CLIENT_ID);

  if (typeof mqtt === "undefined") {
    $("fatal").hidden = false;
    $("fatal").textContent = "vendor/mqtt.min.js did not load: run `sh web/build.sh` (or `make web`) and reload.";
    setBadge($("conn"), "down", "no MQTT.js");
    return;
  }

  /* ---- connection ---- */

  var connected = false, subscribed = false, everConnected = false;
  var client = mqtt.connect(BROKER, {
    clientId: CLIENT_ID,
    clean: true,
    keepalive: 20,
    connectTimeout: 5000,
    reconnectPeriod: 1000,
    resubscribe: false           /* we subscribe on every connect, then catch up */
  });

  client.on("connect", function () {
    connected = true;
    everConnected = true;
    setBadge($("conn"), "connected", "connected");
    cancelQueries();
    var subs = {};
    subs[T_STATUS] = { qos: 1 };
    subs[T_EVENTS + "#"] = { qos: 0 };
    subs[T_REJECTED] = { qos: 1 };
    subs[T_REPLY + "#"] = { qos: 1 };
    client.subscribe(subs, function (err, granted) {
      if (err) { setBadge($("conn"), "down", "subscribe failed: " + err.message); return; }
      var refused = (granted || []).filter(function (g) { return g.qos & 0x80; })
        .map(function (g) { return g.topic; });
      if (refused.length) setBadge($("conn"), "down", "connected, not allowed to read " + refused.join(", "));
      subscribed = true;
      catchUp();   /* events are flowing now: anything the queries miss arrives live */
    });
  });
  client.on("reconnect", function () {
    setBadge($("conn"), "reconnecting", everConnected ? "reconnecting…" : "connecting…");
  });
  client.on("close", function () {
    if (connected) setBadge($("conn"), "reconnecting", "disconnected, reconnecting…");
    connected = false;
    subscribed = false;
    renderWriter();
  });
  client.on("error", function (err) {
    $("conn").title = String(err && err.message || err);
  });
  client.on("message", function (topic, payload, packet) {
    var msg;
    try { msg = JSON.parse(payload.toString()); } catch (e) { return; }
    if (!msg || typeof msg !== "object") return;
    if (topic === T_STATUS) onStatus(msg, packet && packet.retain);
    else if (topic === T_REJECTED) onRejected(msg);
    else if (topic.indexOf(T_EVENTS) === 0) onEvent(topic.slice(T_EVENTS.length), msg);
    else if (topic.indexOf(T_REPLY) === 0) onReply(topic, msg);
  });

  /* Everything that must be asked again after a reconnect or the writer's return. */
  function catchUp() {
    if (!subscribed) return;
    loadBuilds();
    if (log.buildId !== null && !log.inFlight) fetchLog();
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
    client.publish(T_QUERY, JSON.stringify({ query: name, params: qparams, reply_to: topic }), { qos: 1 });
  }

  function onReply(topic, msg) {
    var q = queries[topic];
    if (!q) return;            /* late answer to a query given up on */
    delete queries[topic];
    clearTimeout(q.timer);
    if (!msg.error && !Array.isArray(msg.rows)) msg.error = "malformed answer";
    q.cb(msg);
  }

  /* A new connection: answers to the old one's queries will not come. */
  function cancelQueries() {
    Object.keys(queries).forEach(function (t) { clearTimeout(queries[t].timer); });
    queries = {};
    builds.loading = false;
    log.inFlight = false;
  }

  /* ---- writer status ---- */

  var writer = { last: null, full: null, seenAt: null };

  function onStatus(s, retained) {
    var wasOnline = writer.last && writer.last.state === "online";
    writer.last = s;
    writer.seenAt = retained ? null : new Date();
    if ("applied" in s) writer.full = s;
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
    } else {
      setBadge(badge, s.state === "online" || s.state === "offline" ? s.state : "unknown", show(s.state));
    }
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
  }
  setInterval(renderWriter, 10000);   /* keeps "since (… ago)" current */

  /* ---- events ---- */

  function onEvent(table, ev) {
    var rows = Array.isArray(ev.rows) ? ev.rows : [];
    var t = typeof ev.table === "string" ? ev.table : table;
    var op = typeof ev.op === "string" ? ev.op : "?";
    if (t === "builds") onBuildsEvent(op, rows, !!ev.truncated);
    if (t === "build_logs") onLogEvent(op, rows, !!ev.truncated);
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
      pair.appendChild(el("span", "v", show(it.row[k])));
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

  /* ---- rejections ---- */

  var rejN = 0;

  function onRejected(r) {
    rejN++;
    $("rej-count").textContent = "(" + rejN + ")";
    var li = el("li", "rej");
    var head = el("div", "rej-head");
    head.appendChild(el("span", "ev-time", clock(new Date())));
    head.appendChild(el("span", "rej-error", show(r.error)));
    li.appendChild(head);
    var meta = el("div", "rej-meta muted");
    meta.appendChild(el("span", null, "topic " + show(r.topic)));
    if (r.id !== null && r.id !== undefined) meta.appendChild(el("span", null, "id " + show(r.id)));
    li.appendChild(meta);
    li.appendChild(el("pre", "rej-payload", show(r.payload)));
    var list = $("rej-list");
    list.insertBefore(li, list.firstChild);
    while (list.children.length > REJ_CAP) list.lastChild.remove();
  }

  /* ---- recent builds: the query, then events; events during the query wait ---- */

  var builds = { rows: new Map(), loading: false, buffer: [], error: null, loaded: false, retry: null, backoff: 1000,
                 again: false };

  function loadBuilds() {
    if (builds.loading) return;
    builds.loading = true;
    builds.buffer = [];
    runQuery("recent_builds", {}, function (r) {
      builds.loading = false;
      var buf = builds.buffer;
      builds.buffer = [];
      if (r.error) {
        builds.error = r.error;
        clearTimeout(builds.retry);
        builds.backoff = Math.min(30000, builds.backoff * 2);
        builds.retry = setTimeout(function () { if (subscribed) loadBuilds(); }, builds.backoff);
      } else {
        builds.backoff = 1000;
        builds.error = null;
        builds.loaded = true;
        builds.rows = new Map();
        r.rows.forEach(function (row) { builds.rows.set(row.id, row); });
      }
      buf.forEach(function (e) { buildsApply(e.op, e.rows); });
      renderBuilds();
      if (builds.again) { builds.again = false; loadBuilds(); }
    });
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
    rows.forEach(function (row) {
      if (!row || row.id === undefined) return;
      if (op === "delete") builds.rows.delete(row.id);
      else builds.rows.set(row.id, Object.assign({}, builds.rows.get(row.id), row));
    });
  }

  function renderBuilds() {
    var ids = Array.from(builds.rows.keys()).sort(function (a, b) { return b - a; });
    ids.slice(50).forEach(function (id) { if (id !== log.buildId) builds.rows.delete(id); });
    ids = ids.slice(0, 50);
    var tbody = $("builds-list"), frag = document.createDocumentFragment();
    ids.forEach(function (id) {
      var b = builds.rows.get(id), tr = el("tr");
      tr.setAttribute("data-id", show(id));
      tr.tabIndex = 0;
      if (id === log.buildId) tr.className = "selected";
      tr.appendChild(el("td", "num", show(id)));
      tr.appendChild(el("td", "name", show(b.name)));
      var st = el("td");
      var badge = el("span", "badge", show(b.status));
      badge.setAttribute("data-state", show(b.status));
      st.appendChild(badge);
      tr.appendChild(st);
      var started = el("td", "wide time", timeOf(b.started_at));
      started.title = show(b.started_at);
      tr.appendChild(started);
      tr.appendChild(el("td", "wide num", duration(b.started_at, b.finished_at)));
      frag.appendChild(tr);
    });
    tbody.textContent = "";
    tbody.appendChild(frag);
    $("builds-note").textContent = builds.error ? "Could not load builds: " + builds.error :
      !builds.loaded ? "loading…" : ids.length ? "" : "No builds yet.";
    $("builds-note").classList.toggle("error", !!builds.error);
    renderLogHead();
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

  /* ---- a build's log ----
   * lastId: the highest id shown. Live rows of the build go to `buffer` while a query
   * is in flight (loading), and are merged by id once the last page is in. */

  var log = { buildId: null, gen: 0, lastId: 0, buffer: [], inFlight: false, live: false,
              error: null, nodes: new Map(), shown: 0, dropped: 0, stick: true, unseen: 0,
              retry: null, backoff: 1000, again: false };
  var logBox = $("log-lines");

  function selectBuild(id) {
    if (!(id >= 0)) return;
    log.buildId = id;
    log.gen++;
    log.lastId = 0;
    log.buffer = [];
    log.inFlight = false;
    log.live = false;
    log.error = null;
    log.nodes = new Map();
    log.shown = 0;
    log.dropped = 0;
    log.stick = true;
    log.unseen = 0;
    log.backoff = 1000;
    clearTimeout(log.retry);
    logBox.textContent = "";
    $("log-jump").hidden = true;
    var u = new URL(location.href);
    u.searchParams.set("build", id);
    history.replaceState(null, "", u);
    renderBuilds();
    if (subscribed) fetchLog();
  }

  /* Ask for the rows after lastId; page on until a short page, then go live. */
  function fetchLog() {
    var gen = log.gen;
    clearTimeout(log.retry);
    log.again = false;               /* this query sees every commit evented so far */
    log.inFlight = true;
    log.live = false;
    renderLogHead();
    runQuery("build_log", { build_id: log.buildId, after: log.lastId }, function (r) {
      if (gen !== log.gen) return;
      log.inFlight = false;
      if (r.error) {
        log.error = r.error;
        renderLogHead();
        log.backoff = Math.min(30000, log.backoff * 2);
        log.retry = setTimeout(function () { if (gen === log.gen && subscribed && !log.inFlight) fetchLog(); }, log.backoff);
        return;
      }
      log.error = null;
      log.backoff = 1000;
      logAppend("insert", r.rows);
      if (r.rows.length >= PAGE_SIZE || r.truncated || log.again) { fetchLog(); return; }
      var buf = log.buffer;
      log.buffer = [];
      log.live = true;
      buf.forEach(function (e) { logAppend(e.op, e.rows); });
      renderLogHead();
    });
  }

  function onLogEvent(op, rows, truncated) {
    if (log.buildId === null) return;
    var mine = rows.filter(function (r) { return r && Number(r.build_id) === log.buildId; });
    if (!log.live || truncated) {
      /* loading, or rows of this commit are missing from the event: keep these, and
       * (when truncated) ask the query for everything after the last id shown */
      if (mine.length) log.buffer.push({ op: op, rows: mine });
      if (truncated && log.inFlight) log.again = true;   /* that query may predate it */
      else if (truncated && log.live && subscribed) fetchLog();
      return;
    }
    if (mine.length) logAppend(op, mine);
  }

  function logNode(row) {
    var d = el("div", "ll");
    d.setAttribute("data-id", show(row.id));
    var ts = el("span", "ts", timeOf(row.ts).replace(/^.* /, ""));
    ts.title = show(row.ts);
    d.appendChild(ts);
    d.appendChild(el("span", "tx", show(row.line)));
    return d;
  }

  function logAppend(op, rows) {
    if (!rows.length) return;
    var frag = document.createDocumentFragment(), added = 0;
    rows.forEach(function (row) {
      var id = Number(row.id), old = log.nodes.get(id);
      if (op === "delete") { if (old) { old.classList.add("deleted"); } return; }
      if (id <= log.lastId) {          /* already shown: an update, or a duplicate */
        if (old && op !== "insert") old.replaceWith(log.nodes.set(id, logNode(row)).get(id));
        return;
      }
      var n = logNode(row);
      log.nodes.set(id, n);
      frag.appendChild(n);
      log.lastId = id;
      added++;
    });
    if (!added) return;
    logBox.appendChild(frag);
    log.shown += added;
    while (log.shown > LOG_CAP) {
      var first = logBox.firstChild;
      log.nodes.delete(Number(first.getAttribute("data-id")));
      first.remove();
      log.shown--;
      log.dropped++;
    }
    if (log.stick) {
      logBox.scrollTop = logBox.scrollHeight;
    } else {
      log.unseen += added;
      $("log-jump").hidden = false;
      $("log-jump").textContent = "↓ " + log.unseen + " new line" + (log.unseen === 1 ? "" : "s");
    }
    renderLogHead();
  }

  logBox.addEventListener("scroll", function () {
    log.stick = logBox.scrollHeight - logBox.scrollTop - logBox.clientHeight < 24;
    if (log.stick) { log.unseen = 0; $("log-jump").hidden = true; }
  });
  $("log-jump").addEventListener("click", function () {
    log.stick = true;
    logBox.scrollTop = logBox.scrollHeight;
  });

  function renderLogHead() {
    if (log.buildId === null) return;
    var b = builds.rows.get(log.buildId);
    $("log-title").textContent = "Build " + log.buildId + (b ? " · " + show(b.name) : "");
    var st = $("log-status");
    st.hidden = !b;
    if (b) setBadge(st, show(b.status), show(b.status));
    var n = log.shown + " line" + (log.shown === 1 ? "" : "s");
    if (log.dropped) n += " (" + log.dropped + " older ones not kept)";
    var note = log.error ? "Could not load the log: " + log.error + "; retrying" :
      log.live ? n + " · live" : n + " · loading…";
    $("log-note").textContent = note;
    $("log-note").classList.toggle("error", !!log.error);
    $("log").setAttribute("data-live", String(log.live));
  }

  var first = Number(params.get("build"));
  if (params.get("build") !== null && first >= 0) selectBuild(first);
})();
