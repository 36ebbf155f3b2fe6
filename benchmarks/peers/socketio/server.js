"use strict";
// One Socket.IO server sharing rooms with the others through Redis
// (@socket.io/redis-adapter), as its documentation sets it up.
//
//   node server.js --port 3001 --redis redis://127.0.0.1:PORT --adapter classic
//
// A client that connects with ?room=NAME joins room NAME; one that connects
// with ?publish=NAME may emit "pub" events, each of which becomes
// io.to(NAME).emit("m", data): delivered to the room's members on every server;
// a "flush" event with an ack is answered once the "pub" events before it are handled.
// WebSocket transport only, no compression. Prints "ready" once it listens and
// both Redis connections are up; stops on SIGTERM.
const { Server } = require("socket.io");
const { createAdapter, createShardedAdapter } = require("@socket.io/redis-adapter");
const { createClient } = require("redis");
const { parseArgs } = require("./common");

let stopping = false;

async function main() {
  const args = parseArgs(process.argv.slice(2), { port: "3000", redis: "", adapter: "classic" });
  const pubClient = createClient({ url: args.redis });
  const subClient = pubClient.duplicate();
  for (const client of [pubClient, subClient]) {
    client.on("error", (err) => { if (!stopping) console.error(`redis: ${err.message}`); });
  }
  await Promise.all([pubClient.connect(), subClient.connect()]);
  let adapter;
  if (args.adapter === "classic") {
    adapter = createAdapter(pubClient, subClient);
  } else if (args.adapter === "sharded") {       // SSUBSCRIBE per room while it has members
    adapter = createShardedAdapter(pubClient, subClient, { subscriptionMode: "dynamic" });
  } else {
    throw new Error(`--adapter must be classic or sharded, not ${args.adapter}`);
  }
  const io = new Server({ transports: ["websocket"], perMessageDeflate: false, serveClient: false,
                          adapter });
  io.on("connection", (socket) => {
    const { room, publish } = socket.handshake.query;
    if (typeof room === "string" && room) socket.join(room);
    if (typeof publish === "string" && publish) {
      socket.on("pub", (data) => io.to(publish).emit("m", data));
      // answered after every earlier "pub" of this socket was handled (events run in order)
      socket.on("flush", (ack) => { if (typeof ack === "function") ack(); });
    }
  });
  io.listen(Number(args.port));
  process.on("unhandledRejection", (err) => {   // Redis going away while we stop is no error
    if (!stopping) throw err;
  });
  process.on("SIGTERM", async () => {
    stopping = true;
    setTimeout(() => process.exit(0), 3000).unref();
    try {
      await io.close();            // closes the clients and the adapter (its unsubscribes)
      await Promise.allSettled([pubClient.quit(), subClient.quit()]);
    } finally {
      process.exit(0);
    }
  });
  console.log("ready");
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
