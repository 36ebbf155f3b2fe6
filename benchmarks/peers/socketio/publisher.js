"use strict";
// One publisher: a socket.io-client connection to `--url` with ?publish=ROOM (or,
// with `--client ws`, a plain WebSocket client on a wsframe room URL),
// emitting "pub" events of `--size` bytes at `--rate` per second for
// `--duration` seconds (paced on the elapsed time, so a late timer catches up).
// Prints {"start_ns":T} at its first message; at the end, once server 1 has handled
// every message (a "flush" event's ack), {"messages_sent":N,"elapsed":S,"flushed":true}.
const { io } = require("socket.io-client");
const WebSocket = require("ws");
const { parseArgs, makeMessage } = require("./common");

const args = parseArgs(process.argv.slice(2), { url: "", room: "bench", rate: "100",
                                                duration: "10", size: "64", client: "socketio" });
const rate = Number(args.rate), duration = Number(args.duration), size = Number(args.size);
if (size < 24) throw new Error("size must be >= 24 (a 16-digit timestamp and an 8-digit sender id)");

/** Send `rate` messages per second for `duration` s with send(); then flush(report). */
function publish(send, flush) {
  const start = process.hrtime.bigint();
  const total = Math.floor(duration * rate);
  let sent = 0;
  console.log(JSON.stringify({ start_ns: start.toString() }));
  const tick = setInterval(() => {
    const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
    const due = Math.min(Math.floor(elapsed * rate) + 1, total);
    while (sent < due) send(makeMessage(size, 0)), sent++;
    if (sent >= total) {
      clearInterval(tick);
      const took = Number(process.hrtime.bigint() - start) / 1e9;
      flush((ok) => {
        console.log(JSON.stringify({ messages_sent: sent, elapsed: took, flushed: ok }));
        process.exit(ok ? 0 : 3);
      });
    }
  }, 1);
}

if (args.client === "ws") {   // a plain WebSocket client on a wsframe room URL (a member too)
  const ws = new WebSocket(args.url, { perMessageDeflate: false });
  let written = 0, wanted = 0, onWritten = null;
  ws.on("error", (err) => { console.error(err.message); process.exit(1); });
  ws.on("open", () => publish(
    (data) => { wanted++; ws.send(data, () => { written++; if (onWritten) onWritten(); }); },
    // done once every send's callback ran: its bytes were handed to the kernel
    (report) => {
      onWritten = () => { if (written >= wanted) { ws.close(); report(true); } };
      onWritten();
    }));
} else if (args.client === "socketio") {
  const socket = io(args.url, { transports: ["websocket"], forceNew: true, reconnection: false,
                                query: { publish: args.room } });
  socket.on("connect_error", (err) => { console.error(err.message); process.exit(1); });
  socket.on("connect", () => publish(
    (data) => socket.emit("pub", data),
    // the emits may still sit in the client's buffers: done once the server has handled
    // all of them (it answers "flush" after the "pub" events before it)
    (report) => socket.timeout(60000).emit("flush", (err) => { socket.close(); report(!err); })));
} else {
  throw new Error("--client must be socketio or ws");
}
setTimeout(() => process.exit(2), (duration + 90) * 1000).unref();
