/*
 * ansi.js: ANSI escape sequences in a log line, read as styles. A build's output carries
 * SGR sequences (ESC [ ... m) for colour and weight; this turns a line into runs of
 * plain text, each with the style in force: the 16 basic colours as classes (the theme
 * picks the shades), 256-colour and true-colour values as rgb(), bold, dim, italic,
 * underline, inverse. Every other escape (cursor moves, OSC titles and links) is dropped.
 * Pure: no DOM here. The page puts the text of each run into a span with textContent,
 * so a line is always text, never HTML, whatever it holds.
 * Plain script (Mosquitto's HTTP server sends no Content-Type): defines window.mosqliteAnsi.
 */
(function () {
  "use strict";

  /* ESC [ params final, ESC ] ... (BEL | ESC \), ESC and one more character, or a lone ESC. */
  var ESCAPES = /\x1b(?:\[([0-9;:?<=>]*)[ -\/]*([@-~])|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])?/g;
  var ANY_ESCAPE = /\x1b/;

  function plain() { return { fg: null, bg: null, bold: false, dim: false, italic: false, underline: false, inverse: false }; }

  function copy(s) {
    return { fg: s.fg, bg: s.bg, bold: s.bold, dim: s.dim, italic: s.italic, underline: s.underline, inverse: s.inverse };
  }

  /* xterm's 256-colour palette above the first 16: a 6x6x6 cube, then 24 greys. */
  function color256(n) {
    if (n < 16) return n;
    if (n < 232) {
      n -= 16;
      var lv = [0, 95, 135, 175, 215, 255];
      return "rgb(" + lv[Math.floor(n / 36)] + ", " + lv[Math.floor(n / 6) % 6] + ", " + lv[n % 6] + ")";
    }
    var g = 8 + (n - 232) * 10;
    return "rgb(" + g + ", " + g + ", " + g + ")";
  }

  function byte(v) { v = Number(v); return v >= 0 && v <= 255 ? Math.floor(v) : null; }

  /* Apply one SGR parameter list to style s. Colours are a number 0..15 (a palette
   * class) or an "rgb(...)" string. */
  function sgr(s, params) {
    var p = params === "" ? [0] : params.split(/[;:]/).map(function (x) { return x === "" ? 0 : Number(x); });
    for (var i = 0; i < p.length; i++) {
      var c = p[i];
      if (c === 0) { var z = plain(); for (var k in z) s[k] = z[k]; }
      else if (c === 1) s.bold = true;
      else if (c === 2) s.dim = true;
      else if (c === 3) s.italic = true;
      else if (c === 4) s.underline = true;
      else if (c === 7) s.inverse = true;
      else if (c === 22) { s.bold = false; s.dim = false; }
      else if (c === 23) s.italic = false;
      else if (c === 24) s.underline = false;
      else if (c === 27) s.inverse = false;
      else if (c >= 30 && c <= 37) s.fg = c - 30;
      else if (c === 39) s.fg = null;
      else if (c >= 40 && c <= 47) s.bg = c - 40;
      else if (c === 49) s.bg = null;
      else if (c >= 90 && c <= 97) s.fg = c - 90 + 8;
      else if (c >= 100 && c <= 107) s.bg = c - 100 + 8;
      else if (c === 38 || c === 48) {
        var v = null;
        if (p[i + 1] === 5 && i + 2 < p.length) {
          if (byte(p[i + 2]) !== null) v = color256(byte(p[i + 2]));
          i += 2;
        } else if (p[i + 1] === 2 && i + 4 < p.length) {
          var r = byte(p[i + 2]), g = byte(p[i + 3]), b = byte(p[i + 4]);
          if (r !== null && g !== null && b !== null) v = "rgb(" + r + ", " + g + ", " + b + ")";
          i += 4;
        } else {
          break;            /* malformed: ignore the rest of this sequence */
        }
        if (v !== null) { if (c === 38) s.fg = v; else s.bg = v; }
      }
    }
  }

  /* A line as [{text, style}], style null where nothing is set. Escapes removed. */
  function runs(line) {
    line = String(line);
    if (!ANY_ESCAPE.test(line)) return [{ text: line, style: null }];
    var out = [], s = plain(), at = 0, m, styled = false;
    ESCAPES.lastIndex = 0;
    while ((m = ESCAPES.exec(line)) !== null) {
      if (m.index > at) out.push({ text: line.slice(at, m.index), style: styled ? copy(s) : null });
      at = ESCAPES.lastIndex;
      if (m[2] === "m") {
        sgr(s, m[1] || "");
        styled = s.fg !== null || s.bg !== null || s.bold || s.dim || s.italic || s.underline || s.inverse;
      }
    }
    if (at < line.length) out.push({ text: line.slice(at), style: styled ? copy(s) : null });
    return out;
  }

  /* The line without its escapes: what search, download and copy see. */
  function strip(line) {
    line = String(line);
    if (!ANY_ESCAPE.test(line)) return line;
    return runs(line).map(function (r) { return r.text; }).join("");
  }

  /* Put a style on a span: palette colours as classes, others inline. */
  function apply(span, st) {
    if (!st) return;
    var fg = st.fg, bg = st.bg, cls = [];
    if (st.inverse) { var t = fg; fg = bg === null ? "inv-fg" : bg; bg = t === null ? "inv-bg" : t; }
    if (fg === "inv-fg") cls.push("a-ifg");
    else if (typeof fg === "number") cls.push("a-f" + fg);
    else if (fg) span.style.color = fg;
    if (bg === "inv-bg") cls.push("a-ibg");
    else if (typeof bg === "number") cls.push("a-b" + bg);
    else if (bg) span.style.backgroundColor = bg;
    if (st.bold) cls.push("a-bold");
    if (st.dim) cls.push("a-dim");
    if (st.italic) cls.push("a-italic");
    if (st.underline) cls.push("a-underline");
    if (cls.length) span.className = cls.join(" ");
  }

  window.mosqliteAnsi = { runs: runs, strip: strip, apply: apply };
})();
