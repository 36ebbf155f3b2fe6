"use strict";
// One publisher: a socket.io-client connection to `--url` with ?publish=ROOM,
// emitting "pub" events of `--size` bytes at `--rate` per second for
// `--duration` seconds (paced on the elapsed time, so a late timer catches up).
// Prints {"start_ns":T} at its first message; at the end, once server 1 has handled
// every message (a "flush" event's ack), {"messages_sent":N,"elapsed":S,"flushed":true}.
const { io } = require("socket.io-client");
const { parseArgs, makeMessage } = require("./common");

const args = parseArgs(process.argv.slice(2), { url: "", room: "bench", rate: "100",
                                                duration: "10", size: "64" });
const rate = Number(args.rate), duration = Number(args.duration), size = Number(args.size);
if (size < 24) throw new Error("size must be >= 24 (a 16-digit timestamp and an 8-digit sender id)");

const socket = io(args.url, { transports: ["websocket"], forceNew: true, reconnection: false,
                              query: { publish: args.room } });
socket.on("connect_error", (err) => { console.error(err.message); process.exit(1); });
socket.on("connect", () => {
  const start = process.hrtime.bigint();
  let sent = 0;
  console.log(JSON.stringify({ start_ns: start.toString() }));
  const tick = setInterval(() => {
    const elapsed = Number(process.hrtime.bigint() - start) / 1e9;
    const due = Math.min(Math.floor(elapsed * rate) + 1, Math.floor(duration * rate));
    while (sent < due) socket.emit("pub", makeMessage(size, 0)), sent++;
    if (sent >= Math.floor(duration * rate)) {
      clearInterval(tick);
      const took = Number(process.hrtime.bigint() - start) / 1e9;
      // the emits may still sit in the client's buffers: exit only once the server has
      // handled all of them (it answers "flush" after the "pub" events before it)
      socket.timeout(60000).emit("flush", (err) => {
        console.log(JSON.stringify({ messages_sent: sent, elapsed: took, flushed: !err }));
        socket.close();
        process.exit(err ? 3 : 0);
      });
    }
  }, 1);
});
setTimeout(() => process.exit(2), (duration + 90) * 1000).unref();
