/*
 * logload.js: reads a build's log from the writer into the page's log view, fast
 * however long it is, and keeps it current. Mosquitto's WebSocket listener is slow with
 * large messages and fast with many small ones (README, "Why the page opens fast"), so:
 * build_log_span gives the line count and id range; the first screen is asked for alone
 * in one small answer; the rest of the range is cut into parts of about PART_BYTES of
 * lines, each sized from the density and line length seen so far, and asked for at once,
 * IN_FLIGHT at a time (a chain of answers one after another would wait on the broker's
 * idle tick each time). An answer holds its whole part unless it was cut at :bytes or
 * :limit, which the loader can tell (its rows add up to :bytes or more); then the rest of
 * that part is asked for. Part k is shown once parts 0..k-1 are complete. The last part
 * has no upper end, so lines written while the log opens are in it. Live rows of the
 * build wait in a buffer meanwhile and are merged by id at the end: no gap, no duplicate.
 * A catch-up (reconnect, writer back, truncated event) is the same from the last id
 * shown. A part whose query fails is asked again after a pause (1 s, doubling), while
 * the others go on.
 * A build run again is a new attempt: the loader reads one attempt's lines (open(id,
 * attempt)), and takes from the events only that attempt's rows.
 * No DOM here. Plain script: defines window.mosqliteLogLoader(opts) -> loader, where
 * opts = { query(name, params, cb), view (logview.js), online() (may ask now),
 * changed() (the state moved: redraw the head), shown() (lines were added) }.
 */
(function () {
  "use strict";

  var LOG_CAP = 200000;          /* log lines kept in the page */
  var IN_FLIGHT = 48;            /* build_log queries in flight while opening a log */
  var PART_BYTES = 7000;         /* a part's expected size: most fit in one answer (the
                                    cost is per query: 7,000 asks 30% fewer than 5,000) */
  var ANSWER_BYTES = 8000;       /* build_log's :bytes: answers stay small (at 9,500 some
                                    answers were held up to the page's query timeout) */
  var ANSWER_ROWS = 400;         /* build_log's :limit */
  var HEAD_BYTES = 3200;         /* a log's first answer: what a screen shows, in one */
  var HEAD_ROWS = 40;            /* WebSocket write (the broker's idle loop sends more
                                    than about 4 KB in 4 KB slices, 100 ms apart) */
  var MAX_ID = 9007199254740991;

  /* The bytes build_log counts for a line: its UTF-8 length plus 64. */
  function answerBytes(line) {
    line = line === null || line === undefined ? "NULL" : String(line);
    var n = line.length;
    if (/[^\x00-\x7f]/.test(line)) for (var i = 0; i < line.length; i++) {
      var c = line.charCodeAt(i);
      if (c >= 0xd800 && c < 0xdc00) { n += 2; i++; } else if (c >= 0x800) n += 2; else if (c >= 0x80) n += 1;
    }
    return n + 64;
  }

  function make(o) {
    var view = o.view;
    var log = { buildId: null, attempt: null, gen: 0, loading: false, live: false, error: null, buffer: [], again: false,
                parts: [], head: 0, inFlight: 0, cursor: 0, last: 0, density: 1, rowBytes: 140, onFirst: null,
                waiting: false, lines: null,  /* the span's count: 0 for a build with no log */
                seenRows: 0, seenBytes: 0, retry: null, backoff: 1000,
                t0: 0, firstMs: null, allMs: null };

    function complete() { return log.head >= log.parts.length && log.cursor >= MAX_ID && !log.waiting; }

    /* Another build, or attempt (null: not known yet, nothing is read): everything of the
     * last one goes. */
    function open(id, attempt) {
      log.buildId = id;
      log.attempt = attempt === undefined ? null : attempt;
      log.gen++;
      log.buffer = [];
      log.loading = false;
      log.live = false;
      log.error = null;
      log.lines = null;
      log.backoff = 1000;
      log.inFlight = 0;
      log.firstMs = log.allMs = null;
      clearTimeout(log.retry);
      view.clear();
      if (o.online() && log.attempt !== null) load();
    }

    /* The lines after the last one shown (all of them, on a fresh open). */
    function load() {
      if (log.attempt === null) return;
      var gen = ++log.gen;              /* answers to an earlier load are dropped */
      clearTimeout(log.retry);
      log.inFlight = 0;
      log.again = false;                /* these queries see every commit evented so far */
      log.loading = true;
      log.live = false;
      log.parts = [];
      log.head = 0;
      log.t0 = performance.now();
      o.changed();
      /* Ask at once for the first screen (an open-ended part after the last line shown)
       * and for the span; the parts after the first answer are cut once both are in. A
       * catch-up of a few lines ends with that first answer. */
      var span = null, head = { after: view.lastId(), until: MAX_ID, rows: [], done: false, busy: false,
                                wait: false, first: true };
      log.cursor = MAX_ID;              /* nothing new is cut until then */
      log.waiting = true;
      log.parts.push(head);
      log.onFirst = function () {
        if (head.done) { log.waiting = false; return; }   /* the whole log was in it */
        head.until = head.after;        /* the first part ends at its last row... */
        head.done = true;
        if (span) plan(gen, span, head);   /* ...and the rest is cut from there */
      };
      ask(gen, head);
      o.query("build_log_span", { build_id: log.buildId, attempt: log.attempt }, function (r) {
        if (gen !== log.gen) return;
        if (r.error || !r.rows.length) { failed(gen, r.error || "no answer rows"); return; }
        span = r.rows[0];
        log.lines = Number(span.lines) || 0;
        if (head.done && head.until !== MAX_ID) plan(gen, span, head);
        else o.changed();
      });
    }

    function plan(gen, span, head) {
      var n = Number(span.lines) || 0, first = Number(span.first) || 0, last = Number(span.last) || 0;
      log.waiting = false;
      log.cursor = Math.max(head.until, first - 1);
      log.last = last;
      log.density = n && last >= first ? n / (last - first + 1) : 1;
      showParts();
      pump(gen);
    }

    /* Ask for parts that wait for more, then new parts from the cursor, up to IN_FLIGHT. */
    function pump(gen) {
      for (var i = log.head; i < log.parts.length && log.inFlight < IN_FLIGHT; i++) {
        var p = log.parts[i];
        if (!p.done && !p.busy && !p.wait) ask(gen, p);
      }
      while (log.inFlight < IN_FLIGHT && log.cursor < MAX_ID) {
        var rows = Math.max(1, Math.floor(PART_BYTES / log.rowBytes));
        var until = log.cursor + Math.max(1, Math.ceil(rows / log.density));
        if (until >= log.last) until = MAX_ID;
        var part = { after: log.cursor, until: until, rows: [], done: false, busy: false, wait: false };
        log.parts.push(part);
        log.cursor = until;
        ask(gen, part);
      }
    }

    function ask(gen, p) {
      var limit = p.first ? HEAD_ROWS : ANSWER_ROWS, cap = p.first ? HEAD_BYTES : ANSWER_BYTES;
      p.busy = true;
      log.inFlight++;
      o.query("build_log", { build_id: log.buildId, attempt: log.attempt, after: p.after, until: p.until,
                             limit: limit, bytes: cap }, function (r) {
        if (gen !== log.gen) return;
        log.inFlight--;
        p.busy = false;
        if (r.error) { partFailed(gen, p, r.error); return; }
        log.error = null;
        log.backoff = 1000;
        var bytes = 0;
        r.rows.forEach(function (row) { bytes += answerBytes(row.line); });
        log.seenRows += r.rows.length;
        log.seenBytes += bytes;
        if (log.seenRows) log.rowBytes = log.seenBytes / log.seenRows;
        if (r.rows.length) { Array.prototype.push.apply(p.rows, r.rows); p.after = Number(r.rows[r.rows.length - 1].id); }
        /* cut at :bytes or :limit: more of this part to ask for; else it is complete */
        p.done = !(r.rows.length && (bytes >= cap || r.rows.length >= limit || r.truncated));
        if (p.first) { p.first = false; log.onFirst(); }
        showParts();
        if (complete()) { loaded(); return; }
        pump(gen);
      });
    }

    /* This part again later; the others go on. */
    function partFailed(gen, p, err) {
      log.error = err;
      o.changed();
      p.wait = true;
      setTimeout(function () { p.wait = false; if (gen === log.gen) pump(gen); }, log.backoff);
      log.backoff = Math.min(30000, log.backoff * 2);
    }

    /* The complete parts at the front, and what the first incomplete one has so far. */
    function showParts() {
      while (log.head < log.parts.length) {
        var p = log.parts[log.head];
        if (p.rows.length) { view.append("insert", p.rows, LOG_CAP); p.rows = []; }
        if (!p.done) break;
        log.head++;
      }
      if (log.firstMs === null && (view.size() || complete()))
        log.firstMs = Math.round(performance.now() - log.t0);
      o.shown();
    }

    function loaded() {
      log.loading = false;
      if (log.again) { load(); return; }
      var buf = log.buffer;
      log.buffer = [];
      log.live = true;
      buf.forEach(function (e) { view.append(e.op, e.rows, LOG_CAP); });
      view.state.unseen = 0;            /* "new lines" counts what arrives once live */
      log.allMs = Math.round(performance.now() - log.t0);
      o.shown();
      o.changed();
    }

    function failed(gen, err) {
      log.error = err;
      log.loading = false;
      log.inFlight = 0;
      o.changed();
      log.backoff = Math.min(30000, log.backoff * 2);
      log.retry = setTimeout(function () {
        if (gen === log.gen && o.online() && !log.loading) load();
      }, log.backoff);
    }

    /* A build_logs event: this build's rows go to the view, or wait while it loads. */
    function onEvent(op, rows, truncated) {
      if (log.buildId === null) return;
      var mine = rows.filter(function (r) {
        return r && Number(r.build_id) === log.buildId && Number(r.attempt || 0) === log.attempt;
      });
      if (!log.live || truncated) {
        /* loading, or rows of this commit are missing from the event: keep these, and
         * (when truncated) ask the query for everything after the last id shown */
        if (mine.length) log.buffer.push({ op: op, rows: mine });
        if (truncated && log.loading) log.again = true;   /* those queries may predate it */
        else if (truncated && log.live && o.online()) load();
        return;
      }
      if (mine.length) view.append(op, mine, LOG_CAP);
    }

    return {
      state: log,
      open: open,
      load: load,
      onEvent: onEvent,
      /* A new connection: the answers to the old one's queries will not come. */
      dropped: function () { log.loading = false; }
    };
  }

  window.mosqliteLogLoader = make;
})();
