/*
 * mqtt.js: the page's MQTT client. MQTT 3.1.1 over one WebSocket (subprotocol "mqtt"),
 * and only what the page uses: CONNECT with a clean session, a keepalive and an
 * optional login; SUBSCRIBE; PUBLISH out at QoS 0 or 1; PUBLISH in at QoS 0, 1 or 2
 * (acknowledged as the protocol says); PINGREQ; reconnecting after a pause. It is small
 * on purpose: the page's first screen waits for its client to load, parse and connect,
 * and a general-purpose client with its stream and Buffer layers cost the page about
 * half a second of a 2-core machine's time before its first query went out.
 *
 * The broker may split a packet over several WebSocket messages, or put several in one:
 * the bytes are read as one stream. Payloads are given as text (UTF-8), which is all
 * the page receives (JSON).
 *
 *   var c = mosqliteMqtt.connect("ws://host:9001/", {clientId, username, password,
 *                                keepalive (s), connectTimeout (ms), reconnectPeriod (ms),
 *                                socket (a WebSocket already opened to that URL)});
 *   c.on("connect", fn())                      CONNACK accepted
 *   c.on("error", fn({code, message}))         CONNACK refused (code 1-5), or a bad packet
 *   c.on("close", fn()), c.on("reconnect", fn())
 *   c.on("message", fn(topic, text, {qos, retain}))
 *   c.subscribe([{topic, qos}], fn(err, [{topic, qos}]))   qos 128: refused
 *   c.publish(topic, text, {qos}, acked)      acked(): at the PUBACK of a QoS 1 publish;
 *                                              false when not connected
 *   c.end()                                    close, and no reconnecting
 *
 * Plain script: defines window.mosqliteMqtt.
 */
(function () {
  "use strict";

  var CONNECT = 1, CONNACK = 2, PUBLISH = 3, PUBACK = 4, PUBREC = 5, PUBREL = 6, PUBCOMP = 7,
      SUBSCRIBE = 8, SUBACK = 9, PINGREQ = 12, PINGRESP = 13, DISCONNECT = 14;
  var REFUSED = ["", "Connection refused: unacceptable protocol version",
    "Connection refused: identifier rejected", "Connection refused: server unavailable",
    "Connection refused: bad user name or password", "Connection refused: not authorized"];
  var enc = new TextEncoder(), dec = new TextDecoder();

  /* A packet: fixed header byte, remaining length (1-4 bytes), then the parts. */
  function packet(first, parts) {
    var n = 0, i, len = [];
    parts.forEach(function (p) { n += p.length; });
    var rest = n;
    do { var b = rest % 128; rest = Math.floor(rest / 128); len.push(rest > 0 ? b | 128 : b); } while (rest > 0);
    var out = new Uint8Array(1 + len.length + n), at = 1 + len.length;
    out[0] = first;
    out.set(len, 1);
    for (i = 0; i < parts.length; i++) { out.set(parts[i], at); at += parts[i].length; }
    return out;
  }
  function u16(n) { return new Uint8Array([(n >> 8) & 255, n & 255]); }
  function str(s) {                                  /* a length-prefixed UTF-8 string */
    var b = enc.encode(s), out = new Uint8Array(2 + b.length);
    out.set(u16(b.length), 0);
    out.set(b, 2);
    return out;
  }

  function connect(url, opts) {
    var listeners = {}, ws = null, buf = null, ended = false, up = false;
    var nextId = 0, inflight = new Map(), subs = new Map(), qos2 = new Set();
    var pingTimer = 0, connTimer = 0, againTimer = 0, pingOut = false;
    var early = opts.socket || null;
    var keepalive = opts.keepalive === undefined ? 60 : opts.keepalive;

    function emit(name) {
      var args = Array.prototype.slice.call(arguments, 1);
      (listeners[name] || []).forEach(function (fn) { fn.apply(null, args); });
    }

    /* Packets go out together, one WebSocket message for all those of a task: the
     * broker's libwebsockets reads every MQTT packet of a message at once, but a second
     * message that arrived with the first waits for the next pass of the broker's loop
     * (up to 100 ms when it is idle). */
    var out = [], flushing = false;
    function send(bytes) {
      out.push(bytes);
      if (flushing) return;
      flushing = true;
      Promise.resolve().then(flush);
    }
    function flush() {
      flushing = false;
      var list = out, n = 0, at = 0;
      out = [];
      if (!ws || ws.readyState !== 1 || !list.length) return;
      if (list.length === 1) { ws.send(list[0]); return; }
      list.forEach(function (b) { n += b.length; });
      var all = new Uint8Array(n);
      list.forEach(function (b) { all.set(b, at); at += b.length; });
      ws.send(all);
    }

    /* A packet id not in use (1..65535) for an acknowledged packet. */
    function packetId() {
      for (var k = 0; k < 65535; k++) {
        nextId = nextId % 65535 + 1;
        if (!inflight.has(nextId) && !subs.has(nextId)) return nextId;
      }
      return 0;
    }

    function open() {
      var s = null;
      if (early && early.readyState <= 1 && early.url === new URL(url).href) s = early;
      else if (early) early.close();
      early = null;
      try { s = s || new WebSocket(url, ["mqtt"]); } catch (e) {
        emit("error", { code: 0, message: String(e && e.message || e) });
        closed(null);
        return;
      }
      ws = s;
      buf = null;
      pingOut = false;
      s.binaryType = "arraybuffer";
      connTimer = setTimeout(function () { if (ws === s) s.close(); }, opts.connectTimeout || 30000);
      if (s.readyState === 1) hello(s);
      else s.addEventListener("open", function () { if (ws === s) hello(s); });
      s.addEventListener("message", function (e) { if (ws === s) read(new Uint8Array(e.data)); });
      s.addEventListener("close", function () { if (ws === s) closed(s); });
      s.addEventListener("error", function () { if (ws === s) s.close(); });
    }

    function hello(s) {
      var flags = 2, parts = [str("MQTT"), new Uint8Array([4, 0]), u16(keepalive), str(opts.clientId || "")];
      if (opts.username) { flags |= 128; parts.push(str(opts.username)); }
      if (opts.username && opts.password !== undefined) { flags |= 64; parts.push(str(opts.password)); }
      parts[1][1] = flags;
      out = [];                                      /* nothing of an earlier connection */
      send(packet(CONNECT << 4, parts));
    }

    function closed(s) {
      clearTimeout(connTimer);
      clearInterval(pingTimer);
      if (s && ws !== s) return;
      ws = null;
      up = false;
      inflight.clear();
      qos2.clear();
      subs.clear();                                  /* their SUBACKs will not come */
      emit("close");
      if (ended) return;
      againTimer = setTimeout(function () {
        againTimer = 0;
        if (ended) return;
        emit("reconnect");
        open();
      }, opts.reconnectPeriod === undefined ? 1000 : opts.reconnectPeriod);
    }

    /* The bytes of the stream: whole packets are handled, a partial one kept. */
    function read(bytes) {
      if (buf && buf.length) {
        var joined = new Uint8Array(buf.length + bytes.length);
        joined.set(buf, 0);
        joined.set(bytes, buf.length);
        bytes = joined;
      }
      var at = 0;
      while (bytes.length - at >= 2) {
        var len = 0, mul = 1, k = at + 1, b;
        do {
          if (k >= bytes.length) { buf = bytes.subarray(at); return; }
          b = bytes[k++];
          len += (b & 127) * mul;
          mul *= 128;
        } while ((b & 128) && k - at <= 4);
        if (b & 128) { fail("malformed remaining length"); return; }
        if (bytes.length - k < len) break;
        if (!handle(bytes[at], bytes.subarray(k, k + len))) return;
        at = k + len;
      }
      buf = at < bytes.length ? bytes.slice(at) : null;
    }

    function fail(why) {
      emit("error", { code: 0, message: "MQTT: " + why });
      if (ws) ws.close();
    }

    function handle(first, p) {
      var type = first >> 4;
      if (type === CONNACK) {
        clearTimeout(connTimer);
        if (p.length < 2) { fail("short CONNACK"); return false; }
        var rc = p[1];
        if (rc !== 0) {
          emit("error", { code: rc, message: REFUSED[rc] || "Connection refused: code " + rc });
          if (ws) ws.close();
          return false;
        }
        up = true;
        if (keepalive > 0) pingTimer = setInterval(ping, keepalive * 1000);
        emit("connect");
      } else if (type === PUBLISH) {
        var qos = (first >> 1) & 3, tl = (p[0] << 8) | p[1], topic = dec.decode(p.subarray(2, 2 + tl));
        var at = 2 + tl, id = 0;
        if (qos > 0) { id = (p[at] << 8) | p[at + 1]; at += 2; }
        if (qos === 1) send(packet(PUBACK << 4, [u16(id)]));
        if (qos === 2) {
          send(packet(PUBREC << 4, [u16(id)]));
          if (qos2.has(id)) return true;            /* already delivered once */
          qos2.add(id);
        }
        emit("message", topic, dec.decode(p.subarray(at)), { qos: qos, retain: !!(first & 1) });
      } else if (type === PUBACK) {
        var pid = (p[0] << 8) | p[1], acked = inflight.get(pid);
        inflight.delete(pid);
        if (acked) acked();
      } else if (type === PUBREL) {
        var rid = (p[0] << 8) | p[1];
        qos2.delete(rid);
        send(packet((PUBCOMP << 4), [u16(rid)]));
      } else if (type === SUBACK) {
        var sid = (p[0] << 8) | p[1], cb = subs.get(sid);
        subs.delete(sid);
        if (cb) cb(null, Array.prototype.slice.call(p.subarray(2)));
      } else if (type === PINGRESP) {
        pingOut = false;
      }
      return true;
    }

    /* Keepalive: a ping every period; one still unanswered a period later means the
     * connection is gone (the broker would end it at 1.5 periods anyway). */
    function ping() {
      if (pingOut) { if (ws) ws.close(); return; }
      pingOut = true;
      send(packet(PINGREQ << 4, []));
    }

    open();

    return {
      on: function (name, fn) { (listeners[name] = listeners[name] || []).push(fn); return this; },
      connected: function () { return up; },
      subscribe: function (list, cb) {
        var id = packetId(), parts = [u16(id)];
        list.forEach(function (s) { parts.push(str(s.topic), new Uint8Array([s.qos || 0])); });
        if (!up) { if (cb) cb(new Error("not connected"), []); return; }
        subs.set(id, function (err, codes) {
          if (cb) cb(err, list.map(function (s, i) { return { topic: s.topic, qos: i < codes.length ? codes[i] : 128 }; }));
        });
        send(packet((SUBSCRIBE << 4) | 2, parts));
      },
      publish: function (topic, text, o, acked) {
        var qos = o && o.qos ? 1 : 0, parts = [str(topic)];
        if (!up) return false;
        if (qos) { var id = packetId(); inflight.set(id, acked || null); parts.push(u16(id)); }
        parts.push(enc.encode(text));
        send(packet((PUBLISH << 4) | (qos << 1), parts));
        return true;
      },
      end: function () {
        ended = true;
        clearTimeout(againTimer);
        clearTimeout(connTimer);
        clearInterval(pingTimer);
        if (early) { early.close(); early = null; }
        var s = ws;
        ws = null;
        up = false;
        if (s && s.readyState === 1) s.send(packet(DISCONNECT << 4, []));
        if (s) s.close();
      }
    };
  }

  window.mosqliteMqtt = { connect: connect };
})();
