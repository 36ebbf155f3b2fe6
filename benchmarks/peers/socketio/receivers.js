"use strict";
// Room members: `--count` socket.io-client connections (WebSocket transport, one
// connection each: forceNew) spread round-robin over `--urls`, each joining
// `--room`; with `--client ws`, plain `ws` WebSocket clients on room URLs instead
// (ws://HOST:PORT/room/NAME of wsframe serve; every text message is a delivery). Every "m" event's latency is its receive time (process.hrtime,
// CLOCK_MONOTONIC) minus the send time in the message.
//
// Talks to its driver in lines: prints {"open":N,"failed":F} once every
// connection is open or failed, then {"received":R,"last_ns":T} every 100 ms;
// on "stop" (stdin) prints the final report and exits.
const readline = require("readline");
const { io } = require("socket.io-client");
const WebSocket = require("ws");
const { parseArgs, Histogram } = require("./common");

const args = parseArgs(process.argv.slice(2), { urls: "", count: "100", room: "bench",
                                                rate: "500", timeout: "60", client: "socketio" });
if (!["socketio", "ws"].includes(args.client)) throw new Error("--client must be socketio or ws");
const urls = args.urls.split(",");
const count = Number(args.count);
const hist = new Histogram();
const sockets = [];
let open = 0, failed = 0, received = 0, lastNs = 0n, reported = false, finished = false;
let progress = null;

function onMessage(data) {
  const now = process.hrtime.bigint();
  received++;
  lastNs = now;
  if (typeof data === "string" && data.length >= 16) {
    hist.record(Number(now - BigInt("0x" + data.slice(0, 16))));
  }
}

function settled() {
  if (!reported && open + failed >= count) {
    reported = true;
    console.log(JSON.stringify({ open, failed }));
    progress = setInterval(() => console.log(JSON.stringify({ received, last_ns: lastNs.toString() })), 100);
  }
}

let started = 0;
const ramp = setInterval(() => {   // `rate` connects per second, in 10 ms steps
  const step = Math.max(1, Math.round(Number(args.rate) / 100));
  for (let i = 0; i < step && started < count; i++, started++) {
    let done = false;
    const opened = () => { if (!done) { done = true; open++; settled(); } };
    const failedOne = () => { if (!done) { done = true; failed++; settled(); } };
    if (args.client === "ws") {        // a plain WebSocket client on a wsframe room URL
      const socket = new WebSocket(urls[started % urls.length], { perMessageDeflate: false,
                                                                  handshakeTimeout: 20000 });
      socket.on("open", opened);
      socket.on("error", failedOne);
      socket.on("message", (data) => onMessage(data.toString()));
      sockets.push(socket);
      continue;
    }
    const socket = io(urls[started % urls.length], {
      transports: ["websocket"], forceNew: true, reconnection: false,
      query: { room: args.room }, timeout: 20000,
    });
    socket.on("connect", opened);
    socket.on("connect_error", failedOne);
    socket.on("m", onMessage);
    sockets.push(socket);
  }
  if (started >= count) clearInterval(ramp);
}, 10);

function finish() {
  if (finished) return;
  finished = true;
  clearInterval(progress);
  clearInterval(ramp);
  console.log(JSON.stringify({ final: true, open, failed, received, last_ns: lastNs.toString(),
                               count: hist.count,
                               sum_ns: hist.sumNs, max_ns: hist.maxNs, hist: hist.sparse() }));
  for (const socket of sockets) socket.close();
  setTimeout(() => process.exit(0), 200);
}

readline.createInterface({ input: process.stdin }).on("line", (line) => {
  if (line.trim() === "stop") finish();
});
process.stdin.on("end", finish);
setTimeout(finish, Number(args.timeout) * 1000).unref();   // bounded even if the driver dies
