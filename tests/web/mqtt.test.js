/*
 * mqtt.test.js: web/mqtt.js, the page's MQTT client, against a fake WebSocket in node
 * (no broker, no browser): the bytes it sends, and how it reads what a broker may send
 * (a packet split over several WebSocket messages, several packets in one, long
 * remaining lengths, QoS 1 and 2, a refused login, a lost connection). t_web.sh runs it
 * before the page's checks in Chromium; it prints TAP lines and exits 1 on a failure.
 */
"use strict";
const fs = require("fs");
const path = require("path");
const vm = require("vm");
const assert = require("assert");

const src = fs.readFileSync(path.join(__dirname, "..", "..", "web", "mqtt.js"), "utf8");
let failed = 0;
const pending = [];

/* A WebSocket that records what is sent and lets the test play the broker. */
function world() {
  const sockets = [];
  class FakeSocket {
    constructor(url, protocols) {
      this.url = url; this.protocols = protocols; this.readyState = 0; this.sent = []; this.l = {};
      sockets.push(this);
    }
    addEventListener(name, fn) { (this.l[name] = this.l[name] || []).push(fn); }
    fire(name, ev) { (this.l[name] || []).forEach((fn) => fn(ev || {})); }
    send(b) { this.sent.push(Buffer.from(b)); }
    close() { if (this.readyState === 3) return; this.readyState = 3; this.fire("close"); }
    open() { this.readyState = 1; this.fire("open"); }
    recv(bytes) { const u = Uint8Array.from(bytes); this.fire("message", { data: u.buffer }); }
  }
  const timers = [];
  const ctx = {
    WebSocket: FakeSocket, URL, TextEncoder, TextDecoder, Promise, Set, Map, Uint8Array, Math, String, Error, Array,
    setTimeout: (fn, ms) => { timers.push({ fn, ms }); return timers.length; },
    clearTimeout: () => {}, setInterval: () => 0, clearInterval: () => {},
  };
  ctx.window = ctx;
  vm.createContext(ctx);
  vm.runInContext(src, ctx);
  return { mqtt: ctx.mosqliteMqtt, sockets, timers, FakeSocket };
}

const tick = () => new Promise((r) => setImmediate(r));
function check(name, fn) {
  pending.push((async () => {
    try { await fn(); console.log("ok - mqtt.js: " + name); } catch (e) {
      failed++;
      console.log("not ok - mqtt.js: " + name + ": " + (e && e.message || e));
    }
  })());
}

function remLen(n) { const out = []; do { let b = n % 128; n = Math.floor(n / 128); out.push(n ? b | 128 : b); } while (n); return out; }
function publish(topic, payload, qos, id, retain) {
  const t = Buffer.from(topic), p = Buffer.from(payload);
  const body = [t.length >> 8, t.length & 255, ...t, ...(qos ? [id >> 8, id & 255] : []), ...p];
  return [0x30 | (qos << 1) | (retain ? 1 : 0), ...remLen(body.length), ...body];
}
const CONNACK_OK = [0x20, 2, 0, 0];

async function connected(opts) {
  const w = world();
  const c = w.mqtt.connect("ws://127.0.0.1:9001/", Object.assign({ clientId: "t1", keepalive: 20 }, opts || {}));
  const got = [];
  c.on("message", (topic, text, p) => got.push([topic, text, p.qos, p.retain]));
  const s = w.sockets[0];
  s.open();
  await tick();
  s.recv(CONNACK_OK);
  await tick();
  return { w, c, s, got };
}

check("CONNECT: MQTT 3.1.1, clean session, keepalive, client id, login", async () => {
  const w = world();
  w.mqtt.connect("ws://127.0.0.1:9001/", { clientId: "web-1", keepalive: 20, username: "web", password: "pw" });
  const s = w.sockets[0];
  assert.strictEqual(JSON.stringify(s.protocols), '["mqtt"]');
  s.open();
  await tick();
  const b = s.sent[0];
  assert.strictEqual(b[0], 0x10);
  const body = b.subarray(2);
  assert.deepStrictEqual([...body.subarray(0, 10)], [0, 4, 77, 81, 84, 84, 4, 0x80 | 0x40 | 2, 0, 20]);
  assert.strictEqual(body.subarray(10).toString("latin1"), "\0\x05web-1\0\x03web\0\x02pw");
});

check("takes over a WebSocket opened earlier to the same URL", async () => {
  const w = world();
  const early = new w.FakeSocket("ws://127.0.0.1:9001/", ["mqtt"]);
  early.open();
  w.mqtt.connect("ws://127.0.0.1:9001/", { clientId: "x", socket: early });
  await tick();
  assert.strictEqual(w.sockets.length, 1, "a second socket was opened");
  assert.strictEqual(early.sent[0][0], 0x10);
});

check("a PUBLISH split over three WebSocket messages, then two packets in one", async () => {
  const { s, got } = await connected();
  const a = publish("mosqlite/status", '{"state":"online"}', 0, 0, true);
  s.recv(a.slice(0, 1)); s.recv(a.slice(1, 7)); s.recv(a.slice(7));
  s.recv([...publish("a/b", "1", 0), ...publish("a/c", "2", 0)]);
  assert.deepStrictEqual(got, [["mosqlite/status", '{"state":"online"}', 0, true], ["a/b", "1", 0, false], ["a/c", "2", 0, false]]);
});

check("remaining lengths of 2 and 3 bytes (200 B and 20 KB payloads), cut inside the length", async () => {
  const { s, got } = await connected();
  const big = "x".repeat(20000), mid = "é".repeat(100);
  const p1 = publish("t", mid, 0), p2 = publish("t", big, 0);
  s.recv(p1.slice(0, 2)); s.recv(p1.slice(2));
  s.recv(p2.slice(0, 3)); s.recv(p2.slice(3, 9000)); s.recv(p2.slice(9000));
  assert.strictEqual(got.length, 2);
  assert.strictEqual(got[0][1], mid);
  assert.strictEqual(got[1][1].length, 20000);
});

check("QoS 1 in: PUBACK with its id; QoS 2 in: PUBREC, PUBCOMP on PUBREL, delivered once", async () => {
  const { s, got } = await connected();
  s.sent.length = 0;
  s.recv(publish("r/1", "{}", 1, 0x1234));
  await tick();
  assert.deepStrictEqual([...s.sent[0]], [0x40, 2, 0x12, 0x34]);
  s.recv(publish("r/2", "a", 2, 7));
  s.recv(publish("r/2", "a", 2, 7));          /* the same again, before PUBREL */
  s.recv([0x62, 2, 0, 7]);
  await tick();
  const out = [...s.sent[1]];
  assert.deepStrictEqual(out, [0x50, 2, 0, 7, 0x50, 2, 0, 7, 0x70, 2, 0, 7]);
  assert.strictEqual(got.filter((g) => g[0] === "r/2").length, 1);
});

check("SUBSCRIBE and the SUBACK's granted and refused QoS", async () => {
  const { c, s } = await connected();
  s.sent.length = 0;
  let granted = null;
  c.subscribe([{ topic: "a/#", qos: 1 }, { topic: "b", qos: 0 }], (err, g) => { granted = g; });
  await tick();
  const b = s.sent[0];
  assert.strictEqual(b[0], 0x82);
  const id = (b[2] << 8) | b[3];
  assert.strictEqual(b.subarray(4).toString("latin1"), "\0\x03a/#\x01\0\x01b\0");
  s.recv([0x90, 4, id >> 8, id & 255, 1, 0x80]);
  assert.strictEqual(JSON.stringify(granted), '[{"topic":"a/#","qos":1},{"topic":"b","qos":128}]');
});

check("publishes of one task go out in one WebSocket message, QoS 1 with distinct ids", async () => {
  const { c, s } = await connected();
  s.sent.length = 0;
  c.publish("q", '{"query":"a"}', { qos: 1 });
  c.publish("q", '{"query":"b"}', { qos: 1 });
  c.publish("q", "z", { qos: 0 });
  await tick();
  assert.strictEqual(s.sent.length, 1);
  const b = s.sent[0];
  assert.strictEqual(b[0], 0x32);
  const id1 = (b[5] << 8) | b[6];
  const second = b.subarray(2 + b[1]);
  assert.strictEqual(second[0], 0x32);
  assert.notStrictEqual((second[5] << 8) | second[6], id1);
  assert.strictEqual(b[b.length - 1], "z".charCodeAt(0));
});

check("a QoS 1 publish's PUBACK calls its acked(), that one's only; none after a lost connection", async () => {
  const { w, c, s } = await connected();
  s.sent.length = 0;
  const acked = [];
  assert.strictEqual(c.publish("a", "1", { qos: 1 }, () => acked.push("a")), true);
  c.publish("b", "2", { qos: 1 }, () => acked.push("b"));
  c.publish("c", "3", { qos: 1 }, () => acked.push("c"));
  await tick();
  const ids = [], b = s.sent[0];
  for (let at = 0; at < b.length; at += 2 + b[at + 1]) ids.push((b[at + 5] << 8) | b[at + 6]);
  assert.strictEqual(ids.length, 3);
  s.recv([0x40, 2, ids[1] >> 8, ids[1] & 255]);
  assert.deepStrictEqual(acked, ["b"]);
  s.recv([0x40, 2, ids[1] >> 8, ids[1] & 255]);           /* a second PUBACK: nothing */
  s.close();
  w.timers.filter((t) => t.ms === 1000)[0].fn();
  w.sockets[1].open();
  await tick();
  w.sockets[1].recv(CONNACK_OK);
  w.sockets[1].recv([0x40, 2, ids[0] >> 8, ids[0] & 255]);  /* the old connection's id */
  assert.deepStrictEqual(acked, ["b"]);
  c.end();
  assert.strictEqual(c.publish("d", "4", { qos: 1 }, () => acked.push("d")), false);
});

check("a refused login: error with the CONNACK code, no reconnecting after end()", async () => {
  const w = world();
  const c = w.mqtt.connect("ws://127.0.0.1:9001/", { clientId: "x" });
  let err = null;
  c.on("error", (e) => { err = e; c.end(); });
  w.sockets[0].open();
  await tick();
  w.sockets[0].recv([0x20, 2, 0, 5]);
  assert.strictEqual(err.code, 5);
  assert.match(err.message, /not authorized/);
  w.timers.forEach((t) => t.fn());
  assert.strictEqual(w.sockets.length, 1, "it reconnected");
});

check("a lost connection: close, then reconnect on a new socket after reconnectPeriod", async () => {
  const { w, c, s } = await connected({ reconnectPeriod: 1000 });
  const seen = [];
  c.on("close", () => seen.push("close"));
  c.on("reconnect", () => seen.push("reconnect"));
  c.on("connect", () => seen.push("connect"));
  s.close();
  const again = w.timers.filter((t) => t.ms === 1000);
  assert.strictEqual(again.length, 1);
  again[0].fn();
  assert.strictEqual(w.sockets.length, 2);
  w.sockets[1].open();
  await tick();
  w.sockets[1].recv(CONNACK_OK);
  assert.deepStrictEqual(seen, ["close", "reconnect", "connect"]);
  assert.strictEqual(c.connected(), true);
});

Promise.all(pending).then(() => process.exit(failed ? 1 : 0));
