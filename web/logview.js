/*
 * logview.js: a build's log on the page, however long. The lines live in an array
 * (id, raw text, text without escapes, time, stream); only the rows in view (plus a
 * margin) exist in the DOM, at a fixed row height, so 50,000 lines cost what 60 do.
 * Each row shows its line number (a #L link), its time and its text, coloured from the
 * ANSI escapes it holds (ansi.js) and always put in as text. On top: search (a count,
 * next and previous, matches marked), a filter to the matching lines, a jump to a line
 * (#L120 highlights it), follow-the-end, and the download of the whole log as text.
 * No network here: app.js feeds it lines in id order with logview.append().
 * Plain script: defines window.mosqliteLogView(elements) -> view.
 */
(function () {
  "use strict";

  var ANSI = window.mosqliteAnsi;
  var MARGIN = 30;             /* rows rendered above and below the visible ones */
  var THROTTLE_MS = 100;       /* most often new lines are drawn */

  function make(box, opts) {
    var spacer = document.createElement("div");
    spacer.className = "log-spacer";
    var rows = document.createElement("div");
    rows.className = "log-rows";
    box.textContent = "";
    box.appendChild(spacer);
    box.appendChild(rows);

    var v = {
      lines: [],            /* {id, raw, text, ts, stream, deleted}, in id order */
      byId: new Map(),      /* id -> line object */
      dropped: 0,           /* lines dropped from the front (cap): numbers go on */
      view: null,           /* indexes shown when filtering, else null (all) */
      query: "", hits: [], hitAt: -1, filter: false,
      mark: null,           /* the id highlighted by #L */
      stick: true, unseen: 0, rowH: 0, from: -1, to: -1, dirty: true, frame: 0, timer: 0, drawn: 0,
      toEnd: false, changed: false,
      onchange: opts.onchange || function () {}
    };

    function rowHeight() {
      if (!v.rowH) {
        var probe = document.createElement("div");
        probe.className = "ll";
        probe.textContent = "0";
        rows.appendChild(probe);
        v.rowH = probe.getBoundingClientRect().height || 18;
        probe.remove();
      }
      return v.rowH;
    }

    function count() { return v.view ? v.view.length : v.lines.length; }
    function lineAt(i) { return v.lines[v.view ? v.view[i] : i]; }

    /* One row: number, time, text runs with search matches marked. */
    function rowNode(l, idx) {
      var d = document.createElement("div");
      d.className = "ll" + (l.stream === "stderr" ? " stderr" : "") + (l.deleted ? " deleted" : "") +
        (l.id === v.mark ? " marked" : "");
      d.setAttribute("data-id", String(l.id));
      var n = idx + 1 + v.dropped, a = document.createElement("a");
      a.className = "ln";
      a.href = "#L" + n;
      a.textContent = String(n);
      if (l.stream === "stderr") a.title = "stderr";
      d.appendChild(a);
      var ts = document.createElement("span");
      ts.className = "ts";
      ts.textContent = opts.time(l.ts);
      ts.title = l.ts === null || l.ts === undefined ? "" : String(l.ts);
      d.appendChild(ts);
      var tx = document.createElement("span");
      tx.className = "tx";
      var runs = ANSI.runs(l.raw), q = v.query, lower = q ? l.text.toLowerCase() : "", pos = 0;
      runs.forEach(function (r) {
        var start = pos, end = pos + r.text.length;
        pos = end;
        var cuts = [start];
        if (q) {
          for (var k = lower.indexOf(q, Math.max(0, start - q.length + 1)); k >= 0 && k < end; k = lower.indexOf(q, k + 1)) {
            if (k > start) cuts.push(k);
            if (k + q.length < end) cuts.push(k + q.length);
          }
        }
        cuts.push(end);
        cuts = cuts.filter(function (c, i) { return i === 0 || c > cuts[i - 1]; });
        for (var c = 0; c + 1 < cuts.length; c++) {
          var piece = r.text.slice(cuts[c] - start, cuts[c + 1] - start);
          if (!piece) continue;
          var hit = q && inMatch(lower, q, cuts[c]);
          var s = document.createElement(hit ? "mark" : "span");
          ANSI.apply(s, r.style);
          s.textContent = piece;
          tx.appendChild(s);
        }
      });
      d.appendChild(tx);
      return d;
    }

    function inMatch(lower, q, at) {
      for (var k = lower.lastIndexOf(q, at); k >= 0 && k > at - q.length; k = lower.lastIndexOf(q, k - 1))
        if (k <= at && at < k + q.length) return true;
      return false;
    }

    /* All DOM work happens here, once a frame however many lines came in meanwhile. */
    function render() {
      v.frame = 0;
      v.drawn = performance.now();
      var h = rowHeight(), n = count();
      spacer.style.height = (n * h) + "px";
      if (v.toEnd) { box.scrollTop = n * h; v.toEnd = false; }
      if (v.changed) { v.changed = false; v.onchange(); }
      var top = box.scrollTop, vis = Math.ceil(box.clientHeight / h) + 1;
      var from = Math.max(0, Math.floor(top / h) - MARGIN), to = Math.min(n, Math.floor(top / h) + vis + MARGIN);
      if (!v.dirty && from === v.from && to === v.to) return;
      var frag = document.createDocumentFragment();
      for (var i = from; i < to; i++) frag.appendChild(rowNode(lineAt(i), v.view ? v.view[i] : i));
      rows.textContent = "";
      rows.appendChild(frag);
      rows.style.transform = "translateY(" + (from * h) + "px)";
      v.from = from; v.to = to; v.dirty = false;
    }

    /* Lines coming in are drawn at most every THROTTLE_MS (a long log arrives in
     * hundreds of answers); the first lines of a log, a scroll or a click are drawn in
     * the next frame. */
    function schedule(dirty, now) {
      if (dirty) v.dirty = true;
      if (v.frame) {
        if (!now || !v.timer) return;
        clearTimeout(v.timer);
        v.timer = 0;
      }
      var wait = now ? 0 : v.drawn + THROTTLE_MS - performance.now();
      if (wait > 0) {
        v.frame = v.timer = setTimeout(function () { v.timer = 0; v.frame = requestAnimationFrame(render); }, wait);
      } else {
        v.frame = requestAnimationFrame(render);
      }
    }

    function toBottom() { v.toEnd = true; v.dirty = true; schedule(true); }

    function matches(l) { return v.query !== "" && l.text.toLowerCase().indexOf(v.query) >= 0; }

    /* Lines in id order after the last one kept (older or known ids are updates). */
    function append(op, rows, cap) {
      var added = 0, changed = false, empty = !v.lines.length;
      rows.forEach(function (row) {
        var id = Number(row.id), old = v.byId.get(id);
        if (op === "delete") { if (old) { old.deleted = true; changed = true; } return; }
        if (old) {                     /* an update (or the same row twice) */
          if (op !== "insert") { old.raw = show(row.line); old.text = ANSI.strip(old.raw); old.stream = row.stream; changed = true; }
          return;
        }
        var last = v.lines.length ? v.lines[v.lines.length - 1].id : 0;
        if (id <= last) return;
        var raw = show(row.line);
        var l = { id: id, raw: raw, text: ANSI.strip(raw), ts: row.ts, stream: row.stream || null, deleted: false };
        v.lines.push(l);
        v.byId.set(id, l);
        if (matches(l)) { v.hits.push(v.lines.length - 1); if (v.view) v.view.push(v.lines.length - 1); }
        added++;
      });
      if (cap && v.lines.length > cap) trim(v.lines.length - cap);
      if (!added && !changed) return 0;
      if (v.stick && added) toBottom();
      else if (added) v.unseen += added;
      v.changed = true;                /* onchange from the next frame, not per batch */
      schedule(changed || v.to >= count() - added, empty);   /* the first screen at once */
      return added;
    }

    /* Drop the k oldest lines (the cap); search hits move down by k. */
    function trim(k) {
      v.lines.splice(0, k).forEach(function (l) { v.byId.delete(l.id); });
      v.dropped += k;
      var down = function (i) { return i - k; }, kept = function (i) { return i >= 0; };
      var before = v.hits.length;
      v.hits = v.hits.map(down).filter(kept);
      if (v.view) v.view = v.view.map(down).filter(kept);
      if (v.hitAt >= 0) v.hitAt = Math.max(v.hits.length ? 0 : -1, v.hitAt - (before - v.hits.length));
    }

    function show(x) { return x === null || x === undefined ? "NULL" : typeof x === "object" ? JSON.stringify(x) : String(x); }

    /* Search: case-insensitive substring; hits are line indexes. */
    function search(q, keepPlace) {
      q = String(q || "").toLowerCase();
      v.query = q;
      v.hits = [];
      if (q) for (var i = 0; i < v.lines.length; i++) if (v.lines[i].text.toLowerCase().indexOf(q) >= 0) v.hits.push(i);
      if (!keepPlace) v.hitAt = -1;
      if (v.hitAt >= v.hits.length) v.hitAt = v.hits.length - 1;
      v.view = v.filter && q ? v.hits.slice() : null;
      schedule(true, true);
      v.onchange();
    }

    function setFilter(on) {
      var keep = v.hitAt >= 0 ? v.hits[v.hitAt] : null;
      v.filter = !!on;
      v.view = v.filter && v.query ? v.hits.slice() : null;
      v.stick = false;
      if (keep !== null) scrollToIndex(keep, false); else schedule(true, true);
      v.onchange();
    }

    /* Row i of the lines (not of the view) into the middle of the box. */
    function scrollToIndex(i, select) {
      var pos = v.view ? v.view.indexOf(i) : i;
      if (pos < 0) { v.view = null; v.filter = false; pos = i; }
      spacer.style.height = (count() * rowHeight()) + "px";
      box.scrollTop = Math.max(0, pos * rowHeight() - box.clientHeight / 2 + rowHeight());
      v.stick = false;
      v.toEnd = false;
      if (select) v.mark = v.lines[i].id;
      schedule(true, true);
    }

    /* Next (dir 1) or previous (-1) match after the current one, wrapping. */
    function step(dir) {
      if (!v.hits.length) return;
      v.hitAt = v.hitAt < 0 ? (dir > 0 ? 0 : v.hits.length - 1) : (v.hitAt + dir + v.hits.length) % v.hits.length;
      scrollToIndex(v.hits[v.hitAt], true);
      v.onchange();
    }

    /* Line number n (1-based, as shown): highlight it and bring it into view. */
    function goLine(n) {
      var i = n - 1 - v.dropped;
      if (!(i >= 0 && i < v.lines.length)) return false;
      scrollToIndex(i, true);
      v.onchange();
      return true;
    }

    box.addEventListener("scroll", function () {
      v.stick = box.scrollHeight - box.scrollTop - box.clientHeight < 24;
      if (v.stick) v.unseen = 0;
      schedule(false, true);
      v.onchange();
    });
    window.addEventListener("resize", function () { schedule(true, true); });

    return {
      state: v,
      append: append,
      search: search,
      setFilter: setFilter,
      step: step,
      goLine: goLine,
      follow: function () {         /* at once: a click on "follow" */
        v.stick = true; v.unseen = 0;
        spacer.style.height = (count() * rowHeight()) + "px";
        box.scrollTop = box.scrollHeight;
        schedule(true, true); v.onchange();
      },
      clear: function () {
        v.lines = []; v.byId = new Map(); v.dropped = 0; v.hits = []; v.hitAt = -1; v.view = v.filter && v.query ? [] : null;
        v.mark = null; v.stick = true; v.unseen = 0; box.scrollTop = 0; schedule(true, true); v.onchange();
      },
      /* The whole log as text, escapes removed, one line per line. */
      text: function () { return v.lines.map(function (l) { return l.text; }).join("\n") + (v.lines.length ? "\n" : ""); },
      lastId: function () { return v.lines.length ? v.lines[v.lines.length - 1].id : 0; },
      size: function () { return v.lines.length + v.dropped; }
    };
  }

  window.mosqliteLogView = make;
})();
