// The classic recipe's demo app, in Node: answers every request with its color and version.
// bgproxy runs it with PORT and BG_COLOR set; bgproxy.json maps BLUEGREEN to $BG_COLOR.
// No dependencies: GET answers the recipe's line, POST answers the body's length, and a
// websocket upgrade gets a minimal echo (enough for `bgproxy verify`'s probe).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';

// Bump VERSION in a commit, `bgproxy deploy`, and watch the answer change at cutover.
const VERSION = readFileSync(new URL('./VERSION', import.meta.url), 'utf8').trim();
const port = Number(process.env.PORT ?? 8888);
const color = process.env.BLUEGREEN ?? process.env.BG_COLOR ?? 'unknown';
// `bgproxy verify` labels each answer by these two headers.
const WHO = { 'x-color': color, 'x-version': VERSION };

const server = http.createServer((req, res) => {
  if (req.method === 'GET' || req.method === 'HEAD') {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', ...WHO });
    res.end(`Hello 0-downtime ${color} World! (version ${VERSION})\n`);
    return;
  }
  let length = 0;
  req.on('data', (chunk) => {
    length += chunk.length;
  });
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json', ...WHO });
    res.end(`${JSON.stringify({ color, version: VERSION, received: length })}\n`);
  });
});

// --- websocket echo (RFC 6455, just enough: unfragmented-or-not frames echoed as they come,
// ping -> pong, close -> close). Sockets are kept so SIGTERM can say goodbye (1001).
const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const MAX_FRAME = 1 << 20;
const websockets = new Set();

server.on('upgrade', (req, socket) => {
  const key = req.headers['sec-websocket-key'];
  if (String(req.headers.upgrade).toLowerCase() !== 'websocket' || typeof key !== 'string') {
    socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    return;
  }
  const accept = createHash('sha1').update(key + WS_GUID).digest('base64');
  socket.write(
    `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\nX-Color: ${color}\r\nX-Version: ${VERSION}\r\n\r\n`,
  );
  websockets.add(socket);
  socket.on('close', () => websockets.delete(socket));
  socket.on('error', () => socket.destroy());
  // http.Server sockets allow half-open: answer the peer's FIN, or the proxy (and its drain)
  // keeps waiting for this side to close.
  socket.on('end', () => socket.end());
  let buf = Buffer.alloc(0);
  socket.on('data', (chunk) => {
    buf = Buffer.concat([buf, chunk]);
    for (;;) {
      const frame = parseFrame(buf);
      if (frame === null) return;
      if (frame === 'too-big') return closeWs(socket, 1009);
      buf = buf.subarray(frame.size);
      if (frame.opcode === 0x8) return closeWs(socket, 1000);
      if (frame.opcode === 0x9) socket.write(encodeFrame(0xa, frame.payload));
      else if (frame.opcode <= 0x2) socket.write(encodeFrame(frame.opcode, frame.payload, frame.fin));
    }
  });
});

/** One frame from the start of buf, unmasked; null until it is complete. */
function parseFrame(buf) {
  if (buf.length < 2) return null;
  const fin = (buf[0] & 0x80) !== 0;
  const opcode = buf[0] & 0x0f;
  const masked = (buf[1] & 0x80) !== 0;
  let len = buf[1] & 0x7f;
  let off = 2;
  if (len === 126) {
    if (buf.length < 4) return null;
    len = buf.readUInt16BE(2);
    off = 4;
  } else if (len === 127) {
    if (buf.length < 10) return null;
    const big = buf.readBigUInt64BE(2);
    if (big > BigInt(MAX_FRAME)) return 'too-big';
    len = Number(big);
    off = 10;
  }
  if (len > MAX_FRAME) return 'too-big';
  const mask = masked ? buf.subarray(off, off + 4) : null;
  if (masked) off += 4;
  if (buf.length < off + len) return null;
  const payload = Buffer.from(buf.subarray(off, off + len));
  if (mask) for (let i = 0; i < payload.length; i++) payload[i] ^= mask[i & 3];
  return { fin, opcode, payload, size: off + len };
}

function encodeFrame(opcode, payload, fin = true) {
  const len = payload.length;
  const head = len < 126 ? Buffer.alloc(2) : len < 65536 ? Buffer.alloc(4) : Buffer.alloc(10);
  head[0] = (fin ? 0x80 : 0) | opcode;
  if (len < 126) head[1] = len;
  else if (len < 65536) {
    head[1] = 126;
    head.writeUInt16BE(len, 2);
  } else {
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(len), 2);
  }
  return Buffer.concat([head, payload]);
}

function closeWs(socket, code) {
  const body = Buffer.alloc(2);
  body.writeUInt16BE(code, 0);
  socket.end(encodeFrame(0x8, body));
}

server.listen(port, '127.0.0.1', () => console.log(`listening on 127.0.0.1:${port} as ${color}, version ${VERSION}`));

// bgproxy stops an app with SIGTERM (app.stopSignal) after draining it; finish what is in
// flight and exit, before app.stopTimeoutMs ends in SIGKILL. Websockets still open past the
// drain get a "going away" close.
process.on('SIGTERM', () => {
  console.log('SIGTERM: closing');
  for (const s of websockets) closeWs(s, 1001);
  server.close(() => process.exit(0));
  server.closeIdleConnections();
});
