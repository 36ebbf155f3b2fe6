// wsframe.js: the browser client of the wsframe.v1 protocol (docs/protocol.md).
// One ES module, no dependencies, no build step. Every `wsframe serve` serves it at
// /wsframe.js (types: /wsframe.d.ts):
//
//   <script type="module">
//     import { WsFrame } from "/wsframe.js";
//     const client = new WsFrame("/track/42");               // relative URLs: this page's host
//     client.on("message", (e) => console.log(e.detail.room, e.detail.offset, e.detail.data));
//     client.on("ack", (e) => console.log("acked", e.detail.id));
//     client.send({ id: "msg_123", action: "contact_driver" });   // retried until {"ack":"msg_123"}
//   </script>
//
// What it does (docs/protocol.md §5): the hello carries the session and each room's
// {epoch, offset} from sessionStorage, so a reload resumes (§5.1, §5.2); messages with
// an id stay in an outbox until acked, resent after ackTimeout (5 s), doubling, at most
// maxAttempts times, and all of them again after every welcome, in order (§5.3); a live
// publication that skips an offset is not delivered: the client reconnects and the
// server replays exactly what is missing, or says "discontinuity" (§5.4); reconnects use
// exponential backoff with full jitter, reset after a stable connection (§5.5); the
// protocol's own ping keeps the connection alive and finds dead ones (§5.6).

export const SUBPROTOCOL = "wsframe.v1";
/** The server closes a connection with this code when a newer hello resumed its session (§4.5). */
export const SESSION_TAKEN = 4409;

// --- backoff (self-contained: tests/tools/test_backoff_js.py runs it in Node.js) ---
// Reconnection with exponential backoff and full jitter, as wsframe's Python client
// does: wait random(0, min(30 s, 0.5 s * 2^attempt)) (docs/protocol.md §5.5).
const backoff = { initial: 500, factor: 2, max: 30000, resetAfter: 10000 };  // milliseconds

// The wait before the next attempt, called when a connection or an attempt ends.
// state.openedAt is set when a connection opens and cleared here, so only a connection
// that was really open for resetAfter resets the count: failed attempts keep growing.
function nextDelay(state, now, random = Math.random, policy = backoff) {
  if (state.openedAt !== null && now - state.openedAt >= policy.resetAfter) state.attempt = 0;
  state.openedAt = null;
  const ceiling = Math.min(policy.max, policy.initial * Math.pow(policy.factor, state.attempt));
  state.attempt++;
  return random() * ceiling;
}
// --- end backoff ---

export { nextDelay };

const DEFAULTS = {
  protocols: [],            // more subprotocols to offer after wsframe.v1 (rarely needed)
  ackTimeout: 5000,         // ms before the first resend (§5.3), doubled on each attempt
  maxAttempts: 5,           // sends of one message before it is reported "failed"
  maxOutboxBytes: 1 << 20,  // bytes of unacknowledged messages; send() refuses past it
  keepalive: null,          // ms; null: the welcome's keepalive (§3, §5.6)
  connectTimeout: 10000,    // ms from starting a connection to its welcome
  backoff,                  // { initial, factor, max, resetAfter } in ms (§5.5)
  random: Math.random,
  storageKey: null,         // null: "wsframe.v1 " + the URL
};

const MAX_ID_LENGTH = 128;  // §2
const encoder = new TextEncoder();

/** Raised by send() when the outbox would pass maxOutboxBytes (§5.3). */
export class OutboxFullError extends Error {
  constructor(message) { super(message); this.name = "OutboxFullError"; }
}

function defaultStorage() {
  try {
    return globalThis.sessionStorage || null;
  } catch (err) {  // storage disabled (privacy settings, sandboxed frames)
    return null;
  }
}

function wsURL(url) {
  const base = globalThis.location ? globalThis.location.href : undefined;
  const u = new URL(url, base);
  if (u.protocol === "http:") u.protocol = "ws:";
  else if (u.protocol === "https:") u.protocol = "wss:";
  u.hash = "";  // a WebSocket URL has no fragment (RFC 6455 §3)
  return u.href;
}

function randomId() {
  const bytes = new Uint8Array(9);
  globalThis.crypto.getRandomValues(bytes);  // also in insecure contexts, unlike randomUUID
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * A wsframe.v1 connection that reconnects by itself. Events (CustomEvent, data in
 * `detail`): open, message, ack, failed, recovered, discontinuity, joined, gap, close,
 * attempt, frame. See wsframe.d.ts for each event's detail.
 */
export class WsFrame extends EventTarget {
  constructor(url, options = {}) {
    super();
    this.url = wsURL(url);
    this.options = { ...DEFAULTS, ...options, backoff: { ...backoff, ...(options.backoff || {}) } };
    this.storage = "storage" in options ? options.storage : defaultStorage();
    this.storageKey = this.options.storageKey || SUBPROTOCOL + " " + this.url;
    this.node = null;             // the welcome's node: which server process answered
    this.resumed = false;         // whether the last welcome resumed the stored session
    this.extensions = "";         // e.g. "permessage-deflate" once open
    this.keepalive = null;        // ms in use on this connection
    this.counts = { connections: 0, reconnects: 0, gaps: 0, acked: 0, failed: 0 };
    this._ws = null;
    this._welcomed = false;
    this._stopped = false;
    this._retry = { attempt: 0, openedAt: null };
    this._reconnectTimer = null;
    this._livenessTimer = null;
    this._lastSent = 0;
    this._lastReceived = 0;
    this._startedAt = 0;
    this._outbox = new Map();     // id -> { id, text, size, message, attempts, timer }
    this._outboxBytes = 0;
    this._state = { session: null, rooms: {} };
    this._load();
    this._onOnline = () => { if (this._reconnectTimer !== null) this._connectNow(); };
    if (typeof globalThis.addEventListener === "function") {
      globalThis.addEventListener("online", this._onOnline);
    }
    this._connect();
  }

  // ---- public ------------------------------------------------------------------------

  /** The session id of the last welcome (null before the first one). */
  get session() { return this._state.session; }

  /** room -> { epoch, offset }: the last position of each room (a copy). */
  get rooms() { return JSON.parse(JSON.stringify(this._state.rooms)); }

  /** True between a welcome and the end of that connection. */
  get connected() { return this._welcomed; }

  /** Messages waiting for their ack, and their size in bytes. */
  get pending() { return this._outbox.size; }
  get outboxBytes() { return this._outboxBytes; }

  /** Add a listener; returns this, so calls chain. */
  on(type, listener) { this.addEventListener(type, listener); return this; }

  /**
   * Send an acknowledged message (a JSON object). It gets an id if it has none; the
   * id is returned. It is resent until the server acks it (event "ack") or
   * maxAttempts sends went unanswered (event "failed"). Throws TypeError for a
   * message that is not an object or has an `op` member or a bad id (§2), and
   * OutboxFullError past maxOutboxBytes.
   */
  send(message) {
    if (message === null || typeof message !== "object" || Array.isArray(message)) {
      throw new TypeError("a wsframe.v1 message is a JSON object");
    }
    if ("op" in message) throw new TypeError("a wsframe.v1 message must not have an 'op' member (§2)");
    let id = message.id;
    if (id === undefined) {
      id = randomId();
      message = { id, ...message };
    }
    if (typeof id !== "string" || id.length < 1 || id.length > MAX_ID_LENGTH) {
      throw new TypeError("a message id is a string of 1 to " + MAX_ID_LENGTH + " characters (§2)");
    }
    if (this._outbox.has(id)) throw new TypeError("message " + id + " is already waiting for its ack");
    const text = JSON.stringify(message);
    const size = encoder.encode(text).length;
    if (this._outboxBytes + size > this.options.maxOutboxBytes) {
      throw new OutboxFullError(this._outboxBytes + " bytes wait for acks; limit " + this.options.maxOutboxBytes);
    }
    const entry = { id, text, size, message, attempts: 0, timer: null };
    this._outbox.set(id, entry);
    this._outboxBytes += size;
    this._saveOutbox();
    if (this._welcomed) this._transmit(entry);
    return id;
  }

  /** Send a message without an id (fire and forget, §2). False if not connected. */
  post(message) {
    if (message === null || typeof message !== "object" || Array.isArray(message)) {
      throw new TypeError("a wsframe.v1 message is a JSON object");
    }
    if ("op" in message || "id" in message) {
      throw new TypeError("post() sends a message without 'op' or 'id'; use send() for acked ones");
    }
    if (!this._welcomed) return false;
    this._write(JSON.stringify(message));
    return true;
  }

  /** Drop the current connection and connect again now (the stored position resumes). */
  reconnect() {
    if (this._stopped) return;
    this._drop(4000, "reconnect requested", true);
  }

  /** Close for good: no more reconnects. The stored session, positions and outbox stay
   *  in storage, so a later WsFrame on the same URL resumes them. */
  close(code = 1000, reason = "") {
    if (this._stopped) return;
    this._stopped = true;
    clearTimeout(this._reconnectTimer);
    this._reconnectTimer = null;
    for (const entry of this._outbox.values()) { clearTimeout(entry.timer); entry.timer = null; }
    if (typeof globalThis.removeEventListener === "function") {
      globalThis.removeEventListener("online", this._onOnline);
    }
    const ws = this._ws;
    this._detach();
    if (ws) ws.close(code, reason);
    this._emit("close", { code, reason, reconnectIn: null });
  }

  // ---- the connection -------------------------------------------------------------

  _connect() {
    this._reconnectTimer = null;
    if (this._stopped) return;
    let ws;
    try {
      ws = new WebSocket(this.url, [SUBPROTOCOL, ...this.options.protocols]);
    } catch (err) {  // e.g. a port the browser blocks: report it (after the constructor
      // returned, so listeners see it), and try again later
      this._ws = null;
      this._reconnectTimer = setTimeout(() => this._down(4005, "cannot connect: " + err.message), 0);
      return;
    }
    ws.binaryType = "arraybuffer";
    this._ws = ws;
    this._welcomed = false;
    this._startedAt = this._lastReceived = this._lastSent = Date.now();
    ws.onopen = () => {
      if (this._ws !== ws) return;
      this.extensions = ws.extensions;
      if (ws.protocol !== SUBPROTOCOL) {  // §1: the protocol applies only if selected
        this._down(4001, "the server did not select " + SUBPROTOCOL);
        ws.close(1000);
        return;
      }
      this._write(JSON.stringify({ op: "hello", session: this._state.session, rooms: this._state.rooms }));
    };
    ws.onmessage = (event) => {
      if (this._ws !== ws) return;
      this._lastReceived = Date.now();
      this._frame(event.data);
    };
    ws.onclose = (event) => {
      if (this._ws !== ws) return;
      if (event.code === SESSION_TAKEN) {  // another client resumed our session (§4.5): start anew
        this._state.session = null;
        this._save();
      }
      this._down(event.code, event.reason);
    };
    this._livenessTimer = setInterval(() => this._checkLiveness(), 250);
  }

  _connectNow() {
    clearTimeout(this._reconnectTimer);
    this._detach();
    this._connect();
  }

  _checkLiveness() {
    const now = Date.now();
    if (!this._welcomed) {
      if (now - this._startedAt > this.options.connectTimeout) this._drop(4002, "no welcome in time");
      return;
    }
    if (now - this._lastReceived > 2 * this.keepalive) {  // §5.6: dead, reconnect
      this._drop(4003, "nothing received for 2 x keepalive");
      return;
    }
    if (now - this._lastSent >= this.keepalive) this._write('{"op":"ping"}');
  }

  _write(text) {
    this._lastSent = Date.now();
    this._ws.send(text);
    this._emit("frame", { direction: "out", text });
  }

  /** Stop using the current connection (it may never say goodbye) and reconnect. */
  _drop(code, reason, now = false) {
    const ws = this._ws;
    if (!ws) return;
    this._down(code, reason, now);
    try { ws.close(1000, reason); } catch (err) { /* already closing */ }
  }

  _detach() {
    const ws = this._ws;
    if (ws) { ws.onopen = ws.onmessage = ws.onclose = null; }
    this._ws = null;
    this._welcomed = false;
    clearInterval(this._livenessTimer);
    this._livenessTimer = null;
  }

  _down(code, reason, now = false) {
    const wasOpen = this._welcomed;
    this._detach();
    if (this._stopped) return;
    const delay = now ? 0 : nextDelay(this._retry, Date.now(), this.options.random, this.options.backoff);
    this.counts.reconnects++;
    this._reconnectTimer = setTimeout(() => this._connect(), delay);
    this._emit("close", { code, reason, wasOpen, reconnectIn: delay });
  }

  // ---- frames from the server (§3) ---------------------------------------------------

  _frame(data) {
    if (typeof data !== "string") {  // binary: not part of the protocol, the app's (§1)
      this._emit("message", { room: null, data });
      return;
    }
    this._emit("frame", { direction: "in", text: data });
    let frame;
    try { frame = JSON.parse(data); } catch (err) { return; }
    if (frame === null || typeof frame !== "object" || Array.isArray(frame)) return;
    if (frame.op === undefined && "ack" in frame) { this._acked(frame.ack, frame.duplicate === true); return; }
    const rooms = this._state.rooms;
    switch (frame.op) {
      case "welcome":
        this._welcome(frame);
        break;
      case "pub":
        this._pub(frame);
        break;
      case "msg":
        this._emit("message", { room: null, data: frame.data });
        break;
      case "joined":
        this._position(frame);
        this._emit("joined", { room: frame.room, epoch: frame.epoch, offset: frame.offset });
        break;
      case "recovered":
        this._position(frame);
        this._emit("recovered", { room: frame.room, epoch: frame.epoch, offset: frame.offset,
                                  replayed: frame.replayed });
        break;
      case "discontinuity": {
        const before = rooms[frame.room] || null;
        // "trimmed" in the same epoch: exactly the offsets after ours up to frame.offset
        // are gone. "epoch": the old history is gone and how much of it we missed is not
        // known to the protocol (null).
        const missed = before && before.epoch === frame.epoch ? frame.offset - before.offset : null;
        this._position(frame);
        this._emit("discontinuity", { room: frame.room, epoch: frame.epoch, offset: frame.offset,
                                      reason: frame.reason, missed, previous: before });
        break;
      }
      default:  // pong, and ops this client does not know (§3: ignore them)
        break;
    }
  }

  _welcome(frame) {
    this._state.session = frame.session;
    this.node = frame.node === undefined ? null : frame.node;
    this.resumed = frame.resumed === true;
    const seconds = typeof frame.keepalive === "number" && frame.keepalive > 0 ? frame.keepalive : 20;
    this.keepalive = this.options.keepalive || seconds * 1000;
    this._welcomed = true;
    this._retry.openedAt = Date.now();
    this.counts.connections++;
    this._save();
    for (const entry of this._outbox.values()) this._transmit(entry);  // §5.3: all, in order
    this._emit("open", { session: this.session, resumed: this.resumed, node: this.node,
                         keepalive: this.keepalive });
  }

  _pub(frame) {
    const known = this._state.rooms[frame.room];
    if (known && known.epoch === frame.epoch) {
      if (frame.offset <= known.offset) return;  // a repeat (§5.4)
      if (frame.offset !== known.offset + 1) {   // a gap: do not deliver; resume instead
        this.counts.gaps++;
        this._emit("gap", { room: frame.room, expected: known.offset + 1, got: frame.offset });
        this._drop(4004, "gap in room " + frame.room + ", resuming");  // backoff as after any drop
        return;
      }
    } else if (known && typeof frame.epoch === "string") {
      // §5.4: a new epoch while this connection stayed (the process that keeps the
      // room's history restarted): how much of the old one we missed is not known
      this._emit("discontinuity", { room: frame.room, epoch: frame.epoch, offset: frame.offset - 1,
                                    reason: "epoch", missed: null, previous: known });
    }
    this._position(frame);
    this._emit("message", { room: frame.room, epoch: frame.epoch, offset: frame.offset, data: frame.data });
  }

  _position(frame) {
    if (typeof frame.room !== "string" || typeof frame.epoch !== "string"
        || typeof frame.offset !== "number") return;
    this._state.rooms[frame.room] = { epoch: frame.epoch, offset: frame.offset };
    this._save();
  }

  // ---- the outbox (§5.3) --------------------------------------------------------------

  _transmit(entry) {
    clearTimeout(entry.timer);
    entry.attempts++;
    this._write(entry.text);
    this._emit("attempt", { id: entry.id, attempt: entry.attempts, message: entry.message });
    const wait = this.options.ackTimeout * Math.pow(2, Math.min(entry.attempts - 1, 6));
    entry.timer = setTimeout(() => this._ackLate(entry), wait);
  }

  _ackLate(entry) {
    entry.timer = null;
    if (this._outbox.get(entry.id) !== entry) return;
    if (entry.attempts >= this.options.maxAttempts) {
      this._remove(entry);
      this.counts.failed++;
      this._emit("failed", { id: entry.id, message: entry.message, attempts: entry.attempts,
                             reason: "no ack after " + entry.attempts + " attempts" });
      return;
    }
    if (this._welcomed) this._transmit(entry);  // else: resent after the next welcome
  }

  _acked(id, duplicate) {
    const entry = this._outbox.get(id);
    if (!entry) return;  // an ack repeated for a copy we resent
    this._remove(entry);
    this.counts.acked++;
    this._emit("ack", { id, message: entry.message, duplicate, attempts: entry.attempts });
  }

  _remove(entry) {
    clearTimeout(entry.timer);
    this._outbox.delete(entry.id);
    this._outboxBytes -= entry.size;
    this._saveOutbox();
  }

  // ---- storage (§5.2): session and positions, and the outbox, survive a reload --------

  _load() {
    if (!this.storage) return;
    try {
      const state = JSON.parse(this.storage.getItem(this.storageKey) || "null");
      if (state && typeof state === "object") {
        this._state.session = typeof state.session === "string" ? state.session : null;
        this._state.rooms = state.rooms && typeof state.rooms === "object" ? state.rooms : {};
      }
      const outbox = JSON.parse(this.storage.getItem(this.storageKey + " outbox") || "[]");
      for (const text of Array.isArray(outbox) ? outbox : []) {
        const message = JSON.parse(text);
        const size = encoder.encode(text).length;
        if (this._outboxBytes + size > this.options.maxOutboxBytes) break;
        this._outbox.set(message.id, { id: message.id, text, size, message, attempts: 0, timer: null });
        this._outboxBytes += size;
      }
    } catch (err) {  // unreadable: start afresh (the server then says "joined" or new session)
      this._state = { session: null, rooms: {} };
    }
  }

  _save() {
    if (!this.storage) return;
    try { this.storage.setItem(this.storageKey, JSON.stringify(this._state)); } catch (err) { /* full */ }
  }

  _saveOutbox() {
    if (!this.storage) return;
    try {
      this.storage.setItem(this.storageKey + " outbox",
                           JSON.stringify(Array.from(this._outbox.values(), (e) => e.text)));
    } catch (err) { /* full: the outbox still lives in memory */ }
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

/** new WsFrame(url, options), for those who prefer a function. */
export function connect(url, options) { return new WsFrame(url, options); }
