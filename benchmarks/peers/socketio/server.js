// The Socket.IO side of benchmarks/peers: a minimal chat fanout on socket.io 4.x.
//
//   node server.js HOST PORT
//
// A client joins a room with `join` (room name; acked) — a room of its own
// for the idle test ("user:<i>"), the shared "room:fanout" for the fanout
// test — and a publisher sends `publish` (room, data; acked), which the server
// emits to everyone in the room as `message`. Socket.IO encodes a broadcast
// once and writes the same frame to every member.
//
// Everything else is socket.io's defaults (in-memory adapter, pingInterval
// 25 s, pingTimeout 20 s, no per-message deflate, both transports allowed;
// the load tool connects straight to the WebSocket transport), bound to a
// loopback address only. socket.io is loaded from PEERS_CACHE (see
// ../install), via NODE_PATH.
'use strict';

const http = require('node:http');
const { Server } = require('socket.io');

const [host, portText] = process.argv.slice(2);
const port = Number(portText);
if (!host || !Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error('usage: node server.js HOST PORT');
  process.exit(2);
}
if (!/^127\.\d+\.\d+\.\d+$/.test(host) && host !== '::1') {
  console.error(`refusing to listen on ${host}: loopback addresses only`);
  process.exit(2);
}

const httpServer = http.createServer();
const io = new Server(httpServer, { serveClient: false });

io.on('connection', (socket) => {
  socket.on('join', (room, ack) => {
    if (typeof room !== 'string' || room.length === 0 || room.length > 200) {
      if (typeof ack === 'function') ack({ error: 'room must be a non-empty string' });
      return;
    }
    socket.join(room);
    if (typeof ack === 'function') ack({ ok: true });
  });
  socket.on('publish', (room, data, ack) => {
    if (typeof room !== 'string') {
      if (typeof ack === 'function') ack({ error: 'room must be a string' });
      return;
    }
    io.to(room).emit('message', data);
    if (typeof ack === 'function') ack({ ok: true });
  });
});

httpServer.listen(port, host, () => {
  console.log(`socket.io ${require('socket.io/package.json').version} fanout server on ${host}:${port}, pid ${process.pid}`);
});

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    io.close();
    process.exit(0);
  });
}
