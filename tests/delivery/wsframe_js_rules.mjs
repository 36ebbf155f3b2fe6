// wsframe.js against docs/protocol.md §5, in Node.js with a scripted WebSocket and a
// virtual clock (tests/delivery/test_wsframe_js.py runs it; each check prints "ok NAME").
// The paths a browser test cannot provoke at will: retries and "failed", gaps, liveness,
// backoff ceilings, the outbox bound, 4409, storage.
import { readFileSync } from "node:fs";

// ---- a virtual clock: timers run only when the test advances time -----------------
let now = 1_000_000, nextTimer = 1;
const timers = new Map();   // id -> { at, fn, every }
globalThis.setTimeout = (fn, ms = 0) => { const id = nextTimer++; timers.set(id, { at: now + ms, fn, every: null }); return id; };
globalThis.setInterval = (fn, ms) => { const id = nextTimer++; timers.set(id, { at: now + ms, fn, every: ms }); return id; };
globalThis.clearTimeout = globalThis.clearInterval = (id) => { timers.delete(id); };
Date.now = () => now;
function advance(ms) {
  const end = now + ms;
  for (;;) {
    let due = null;
    for (const [id, t] of timers) if (t.at <= end && (!due || t.at < due[1].at || (t.at === due[1].at && id < due[0]))) due = [id, t];
    if (!due) break;
    const [id, t] = due;
    now = t.at;
    if (t.every) t.at += t.every; else timers.delete(id);
    t.fn();
  }
  now = end;
}

// ---- a scripted WebSocket ---------------------------------------------------------
const sockets = [];
class FakeWebSocket {
  constructor(url, protocols) {
    this.url = url; this.protocols = protocols; this.sent = []; this.closed = null;
    this.protocol = ""; this.extensions = "";
    sockets.push(this);
  }
  send(text) { if (this.closed) throw new Error("send on a closed socket"); this.sent.push(text); }
  close(code, reason) { this.closed = { code, reason }; }
  // the test's side: what the network does
  open(protocol = "wsframe.v1") { this.protocol = protocol; this.onopen && this.onopen(); }
  receive(frame) { this.onmessage && this.onmessage({ data: typeof frame === "string" ? frame : JSON.stringify(frame) }); }
  drop(code = 1006, reason = "") { this.onclose && this.onclose({ code, reason }); }
  frames() { return this.sent.map((t) => JSON.parse(t)); }
}
globalThis.WebSocket = FakeWebSocket;

class MemoryStorage {
  constructor() { this.items = new Map(); }
  getItem(k) { return this.items.has(k) ? this.items.get(k) : null; }
  setItem(k, v) { this.items.set(k, String(v)); }
}

const source = readFileSync(process.argv[2], "utf8");
const { WsFrame, OutboxFullError, SESSION_TAKEN } = await import("data:text/javascript;base64," + Buffer.from(source).toString("base64"));

function assert(cond, what) { if (!cond) { console.error("FAILED: " + what); process.exit(1); } }
function equal(a, b, what) { assert(JSON.stringify(a) === JSON.stringify(b), what + ": " + JSON.stringify(a) + " != " + JSON.stringify(b)); }
function record(client, types) {
  const events = [];
  for (const type of types) client.on(type, (e) => events.push([type, e.detail]));
  return events;
}
const URL_ = "ws://example.test/track/42";
const welcome = (session = "S1", extra = {}) => ({ op: "welcome", session, resumed: false, keepalive: 20, node: "pid 1", ...extra });
function fresh(options = {}) {
  sockets.length = 0; timers.clear();
  return new WsFrame(URL_, { storage: new MemoryStorage(), random: () => 1, ...options });
}

// §5.1, §5.2: the hello carries the stored session and positions; the welcome's session is kept.
{
  const storage = new MemoryStorage();
  storage.setItem("wsframe.v1 " + URL_, JSON.stringify({ session: "old", rooms: { "order:42": { epoch: "e1", offset: 7 } } }));
  sockets.length = 0;
  const c = new WsFrame(URL_, { storage });
  const ws = sockets[0];
  equal(ws.protocols, ["wsframe.v1"], "the subprotocol is offered");
  ws.open();
  equal(ws.frames()[0], { op: "hello", session: "old", rooms: { "order:42": { epoch: "e1", offset: 7 } } }, "hello");
  const events = record(c, ["open"]);
  ws.receive(welcome("S2", { resumed: false }));
  equal(c.session, "S2", "the welcome's session is kept");
  equal(JSON.parse(storage.getItem("wsframe.v1 " + URL_)).session, "S2", "and stored");
  equal(events[0][1].node, "pid 1", "open says which node");
  c.close();
  console.log("ok hello_and_storage");
}

// §5.3: resent after 5 s, doubling, at most 5 sends, then "failed".
{
  const c = fresh({ keepalive: 1e9 });   // a connection that stays up, an app that never acks
  const ws = sockets[0];
  const events = record(c, ["attempt", "failed", "ack"]);
  ws.open(); ws.receive(welcome());
  const id = c.send({ id: "msg_123", action: "contact_driver" });
  equal(id, "msg_123", "the given id is kept");
  const sendTimes = [];
  const origSend = ws.send.bind(ws);
  ws.send = (t) => { if (t.includes("msg_123")) sendTimes.push(now); origSend(t); };
  const t0 = now;
  sendTimes.push(t0);   // the first send happened in send()
  advance(200_000);
  const offsets = sendTimes.map((t) => t - t0);
  equal(offsets, [0, 5000, 15000, 35000, 75000], "resends after 5 s, doubling");
  const failed = events.filter((e) => e[0] === "failed");
  equal(failed.length, 1, "one failed event");
  equal(failed[0][1].attempts, 5, "after 5 attempts");
  equal(c.pending, 0, "the outbox is empty");
  c.close();
  console.log("ok retries_then_failed");
}

// §5.3: acks, duplicates, and the outbox resent in order after every welcome.
{
  const c = fresh();
  let ws = sockets[0];
  const events = record(c, ["ack"]);
  const a = c.send({ action: "a" });          // before any welcome: queued
  const b = c.send({ action: "b" });
  assert(typeof a === "string" && a.length > 0 && a !== b, "ids are made up, unique");
  ws.open();
  equal(ws.frames().length, 1, "only the hello before the welcome");
  ws.receive(welcome());
  equal(ws.frames().slice(1).map((f) => f.id), [a, b], "sent after the welcome, in order");
  ws.receive({ ack: a });
  ws.drop();
  advance(1000);
  ws = sockets[1];
  ws.open(); ws.receive(welcome());
  equal(ws.frames().slice(1).map((f) => f.id), [b], "the unacked one resent after the next welcome");
  ws.receive({ ack: b, duplicate: true });
  equal(events.map((e) => [e[1].id, e[1].duplicate]), [[a, false], [b, true]], "ack events");
  equal(c.pending, 0, "nothing pending");
  c.close();
  console.log("ok acks_and_resend_after_welcome");
}

// §5.4: repeats ignored, the next one delivered, a gap not delivered: reconnect and resume.
{
  const c = fresh();
  let ws = sockets[0];
  const events = record(c, ["message", "gap", "recovered", "discontinuity"]);
  ws.open(); ws.receive(welcome());
  ws.receive({ op: "joined", room: "r", epoch: "e", offset: 3 });
  ws.receive({ op: "pub", room: "r", epoch: "e", offset: 4, data: "four" });
  ws.receive({ op: "pub", room: "r", epoch: "e", offset: 4, data: "four again" });
  ws.receive({ op: "pub", room: "r", epoch: "e", offset: 6, data: "six" });
  equal(events.filter((e) => e[0] === "message").map((e) => e[1].data), ["four"], "once, and not past a gap");
  equal(events.filter((e) => e[0] === "gap")[0][1], { room: "r", expected: 5, got: 6 }, "the gap is reported");
  assert(ws.closed !== null, "the connection with the gap is dropped");
  advance(1000);
  ws = sockets[1];
  ws.open();
  equal(ws.frames()[0].rooms, { r: { epoch: "e", offset: 4 } }, "the hello resumes from the last delivered");
  ws.receive(welcome());
  ws.receive({ op: "pub", room: "r", epoch: "e", offset: 5, data: "five" });
  ws.receive({ op: "pub", room: "r", epoch: "e", offset: 6, data: "six" });
  ws.receive({ op: "recovered", room: "r", epoch: "e", offset: 6, replayed: 2 });
  equal(events.filter((e) => e[0] === "message").map((e) => e[1].data), ["four", "five", "six"], "repaired, in order");
  ws.receive({ op: "discontinuity", room: "r", epoch: "e", offset: 10, reason: "trimmed" });
  ws.receive({ op: "discontinuity", room: "r", epoch: "e2", offset: 0, reason: "epoch" });
  equal(events.filter((e) => e[0] === "discontinuity").map((e) => [e[1].reason, e[1].missed]),
        [["trimmed", 4], ["epoch", null]], "what a discontinuity says was missed");
  ws.receive({ op: "future-op", x: 1 });        // §3: unknown ops ignored
  ws.receive("not json");
  equal(c.rooms, { r: { epoch: "e2", offset: 0 } }, "positions follow the last frame");
  // §5.4: a pub of a new epoch on the same connection (the room's owner worker restarted)
  ws.receive({ op: "pub", room: "r", epoch: "e3", offset: 2, data: "new history" });
  const last = events.filter((e) => e[0] === "discontinuity").slice(-1)[0][1];
  equal([last.reason, last.epoch, last.missed, last.previous], ["epoch", "e3", null, { epoch: "e2", offset: 0 }],
        "a new epoch in a pub is a discontinuity");
  equal(events.slice(-1)[0][1].data, "new history", "then delivered");
  equal(c.rooms, { r: { epoch: "e3", offset: 2 } }, "and its position kept");
  c.close();
  console.log("ok publications_in_order");
}

// §5.5: backoff ceilings grow while attempts fail, and reset after a stable connection.
{
  const c = fresh({ connectTimeout: 1e9 });   // random() = 1: each wait is its ceiling
  const events = record(c, ["close"]);
  for (let i = 0; i < 8; i++) { sockets[sockets.length - 1].drop(); advance(60_000); }
  equal(events.map((e) => e[1].reconnectIn), [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000], "ceilings");
  const ws = sockets[sockets.length - 1];
  ws.open(); ws.receive(welcome());
  advance(10_000);  // stable (pongs keep it alive: answer the pings)
  ws.drop();
  equal(events[events.length - 1][1].reconnectIn, 500, "reset after a stable connection");
  c.close();
  console.log("ok backoff");
}

// §5.6: a ping after keepalive seconds of silence; dead after twice that without a frame.
{
  const c = fresh();
  const ws = sockets[0];
  const events = record(c, ["close"]);
  ws.open(); ws.receive(welcome());
  advance(20_000);
  assert(ws.frames().some((f) => f.op === "ping"), "a ping after 20 s of sending nothing");
  ws.receive({ op: "pong" });
  advance(39_000);
  equal(events.length, 0, "alive: a frame came within 40 s");
  advance(2_000);
  equal(events[0][1].code, 4003, "dead after 40 s without a frame");
  assert(ws.closed !== null, "and dropped");
  advance(1000);
  equal(sockets.length, 2, "and a new connection started");
  c.close();
  console.log("ok liveness");
}

// A connection that never gets a welcome is given up after connectTimeout.
{
  const c = fresh({ connectTimeout: 3000 });
  const events = record(c, ["close"]);
  sockets[0].open();
  advance(3500);
  equal(events[0][1].code, 4002, "no welcome in time");
  c.close();
  console.log("ok connect_timeout");
}

// A WebSocket the browser refuses to create (it throws): reported, retried later.
{
  let refuse = 1;
  globalThis.WebSocket = class extends FakeWebSocket {
    constructor(...args) { if (refuse-- > 0) throw new Error("blocked port"); super(...args); }
  };
  const c = fresh();
  const events = record(c, ["close"]);
  equal(sockets.length, 0, "refused");
  advance(1000);
  equal(events[0]?.[1].code, 4005, "reported");
  equal(sockets.length, 1, "tried again");
  globalThis.WebSocket = FakeWebSocket;
  c.close();
  console.log("ok constructor_throws");
}

// §1: a server that does not select wsframe.v1 is not spoken to.
{
  const c = fresh();
  const events = record(c, ["close"]);
  sockets[0].open("");
  equal(sockets[0].sent, [], "no hello to a plain server");
  equal(events[0][1].code, 4001, "reported");
  c.close();
  console.log("ok not_selected");
}

// §5.7 (4409): the session was taken over: the next hello starts a new one, positions kept.
{
  const c = fresh();
  let ws = sockets[0];
  ws.open(); ws.receive(welcome("S1"));
  ws.receive({ op: "joined", room: "r", epoch: "e", offset: 2 });
  ws.drop(SESSION_TAKEN, "wsframe.v1: session resumed by another connection");
  advance(1000);
  ws = sockets[1]; ws.open();
  equal(ws.frames()[0], { op: "hello", session: null, rooms: { r: { epoch: "e", offset: 2 } } }, "new session, same rooms");
  c.close();
  console.log("ok session_taken");
}

// §5.3: the outbox is bounded in bytes; §2: what a message may not be.
{
  const c = fresh({ maxOutboxBytes: 100 });
  c.send({ id: "m1", text: "x".repeat(40) });
  let refused = null;
  try { c.send({ id: "m2", text: "x".repeat(60) }); } catch (err) { refused = err; }
  assert(refused instanceof OutboxFullError, "refused past the bound");
  for (const bad of [null, [1], "text", { op: "ping" }, { id: "" }, { id: 5 }, { id: "x".repeat(129) }, { id: "m1" }]) {
    let err = null;
    try { c.send(bad); } catch (e) { err = e; }
    assert(err instanceof TypeError, "refused: " + JSON.stringify(bad));
  }
  equal(c.pending, 1, "only the good one waits");
  equal(c.post({ x: 1 }), false, "post needs a connection");
  c.close();
  console.log("ok outbox_bound_and_validation");
}

// §5.2: a new client on the same storage (a reload) resumes session, positions and outbox.
{
  const storage = new MemoryStorage();
  sockets.length = 0;
  const first = new WsFrame(URL_, { storage });
  sockets[0].open(); sockets[0].receive(welcome("S9"));
  sockets[0].receive({ op: "joined", room: "r", epoch: "e", offset: 0 });
  sockets[0].receive({ op: "pub", room: "r", epoch: "e", offset: 1, data: 1 });
  first.send({ id: "pending-1", action: "contact_driver" });
  first.close();                            // the page goes away
  const second = new WsFrame(URL_, { storage });
  const ws = sockets[1];
  ws.open();
  equal(ws.frames()[0], { op: "hello", session: "S9", rooms: { r: { epoch: "e", offset: 1 } } }, "resumed from storage");
  ws.receive(welcome("S9", { resumed: true }));
  equal(ws.frames()[1].id, "pending-1", "the stored outbox is resent");
  second.close();
  console.log("ok reload");
}
