// An answer complete before the HTTP/2 upload is (the app answers 413 without reading,
// bgproxy refuses a body over limits.maxBodyBytes): once the answer's last frame is out, the
// rest of the request is refused with RST_STREAM NO_ERROR (RFC 9113 8.1), so the client
// stops sending; the stream used to stay open, its body read and dropped for as long as the
// client went on. A temp file the body had is freed.
import type http from 'node:http';
import http2 from 'node:http2';
import t from 'tap';
import { colorHandler, startBackend } from '../helpers/backend.js';
import { FLAG, FRAME, frame, h2Connect, hpack, rawH2, requestFields } from '../helpers/h2.js';
import { startProxy } from '../helpers/proxy.js';
import { tempFds } from '../helpers/temp-fds.js';
import { issueCert, makeCa } from '../helpers/tls.js';

type T = { teardown(fn: () => unknown): void };
const { NGHTTP2_NO_ERROR } = http2.constants;

/** Answers 413 to /early at once, reading and dropping the body meanwhile; 'ok' after reading it otherwise. */
const earlyApp: http.RequestListener = (req, res) => {
  if (req.url === '/early') {
    req.resume();
    res.writeHead(413, { 'content-type': 'text/plain' });
    res.end('too big\n');
    return;
  }
  let n = 0;
  req.on('data', (c: Buffer) => (n += c.length));
  req.on('end', () => res.end(`ok ${n}\n`));
};

async function setup(t: T, settings: Record<string, unknown> = {}) {
  const ca = makeCa(t);
  const cert = issueCert(ca, 'live', ['live.test', '*.live.test']);
  const blue = await startBackend(t, earlyApp);
  const green = await startBackend(t, colorHandler('green'));
  const p = await startProxy(t, { blue, green, settings: { tls: { listen: '127.0.0.1:0', certificates: [cert] }, ...settings } });
  return { ca, blue, root: p.root, port: Number(p.tlsListen!.split(':').pop()) };
}

interface Upload {
  status: number;
  body: string;
  /** The stream closed (null: not within the wait), and its RST_STREAM code. */
  closedAfterMs: number | null;
  rstCode: number | undefined;
  /** Bytes the client wrote (it never ends its body). */
  written: number;
}

/**
 * An upload that never ends: 16 KiB chunks as fast as the stream takes them, up to `max`
 * bytes (then it waits); with `hold`, it stops at `hold.bytes` until `hold.until()` holds.
 */
function endlessUpload(
  t: T,
  port: number,
  ca: Buffer,
  path: string,
  headers: http2.OutgoingHttpHeaders = {},
  max = 32 * 1024 * 1024,
  hold?: { bytes: number; until: () => boolean },
  waitMs = 8000,
): Promise<Upload> {
  const s = h2Connect(t, port, ca);
  const req = s.request({ ':method': 'POST', ':path': path, ':authority': 'live.test', ...headers }, { endStream: false });
  const u: Upload = { status: 0, body: '', closedAfterMs: null, rstCode: undefined, written: 0 };
  const started = performance.now();
  req.on('error', () => {});
  req.on('response', (h) => (u.status = Number(h[':status'])));
  req.setEncoding('latin1');
  req.on('data', (c: string) => (u.body += c));
  const chunk = Buffer.alloc(16 * 1024, 'u');
  let held = false;
  const more = (): void => {
    while (!req.closed && u.written < max) {
      if (hold !== undefined && !held && u.written >= hold.bytes) {
        if (!hold.until()) return void setTimeout(more, 10);
        held = true;
      }
      u.written += chunk.length;
      if (!req.write(chunk)) return void req.once('drain', more);
    }
  };
  more();
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(u), waitMs);
    req.on('close', () => {
      clearTimeout(timer);
      u.closedAfterMs = performance.now() - started;
      u.rstCode = req.rstCode;
      resolve(u);
    });
  });
}

t.test('the app answers 413 before reading the upload: the answer arrives whole, then RST_STREAM NO_ERROR ends the upload', async (t) => {
  const { ca, port } = await setup(t, { buffering: { requests: false } });
  const u = await endlessUpload(t, port, ca.pem, '/early');
  t.equal(u.status, 413, 'the app answered 413');
  t.equal(u.body, 'too big\n', 'the whole answer arrived');
  t.not(u.closedAfterMs, null, `the stream was closed (after ${u.closedAfterMs?.toFixed(0)} ms, ${u.written} bytes written)`);
  t.equal(u.rstCode, NGHTTP2_NO_ERROR, 'with RST_STREAM NO_ERROR');
  t.ok(u.written < 32 * 1024 * 1024, 'the client was stopped before it wrote all it would');
});

t.test('raw frames: the answer (HEADERS, DATA with END_STREAM) comes first, then RST_STREAM NO_ERROR; the session serves on', async (t) => {
  const { ca, port } = await setup(t, { buffering: { requests: false } });
  const c = await rawH2(t, port, ca.pem);
  c.write(frame(FRAME.HEADERS, FLAG.END_HEADERS, 1, hpack(requestFields('/early', 'live.test', [], 'POST'))));
  c.write(frame(FRAME.DATA, 0, 1, Buffer.alloc(1000, 'a')));
  const rst = await c.waitFor((f) => f.stream === 1 && f.type === FRAME.RST_STREAM, 8000);
  t.not(rst, null, 'RST_STREAM on the unfinished upload');
  t.equal(rst?.payload.readUInt32BE(0), NGHTTP2_NO_ERROR, 'with NO_ERROR');
  const mine = c.frames.filter((f) => f.stream === 1).map((f) => (f.type === FRAME.DATA && (f.flags & FLAG.END_STREAM) !== 0 ? 'END' : f.type));
  t.same([mine[0], mine.at(-2), mine.at(-1)], [FRAME.HEADERS, 'END', FRAME.RST_STREAM], `the answer's frames, its END_STREAM, then the reset: ${mine.join(' ')}`);
  const body = Buffer.concat(c.frames.filter((f) => f.stream === 1 && f.type === FRAME.DATA).map((f) => f.payload)).toString();
  t.equal(body, 'too big\n', 'the whole answer arrived');
  c.write(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 3, hpack(requestFields('/next', 'live.test', [], 'POST'))));
  const next = await c.waitFor((f) => f.stream === 3 && (f.type === FRAME.RST_STREAM || (f.flags & FLAG.END_STREAM) !== 0));
  t.ok(next !== null && next.type !== FRAME.RST_STREAM, 'the next request on the session is answered');
});

t.test('bgproxy refuses a chunked upload past limits.maxBodyBytes (buffered, in a temp file): 413, RST_STREAM NO_ERROR, temp file freed', async (t) => {
  const { ca, port, root, blue } = await setup(t, { limits: { maxBodyBytes: 512 * 1024 } });
  // Past buffering.memoryBytes (64 KiB) the body goes to a temp file: the upload waits until it is open.
  let hadFile = false;
  const u = await endlessUpload(t, port, ca.pem, '/big', {}, undefined, { bytes: 256 * 1024, until: () => (hadFile = tempFds(root) > 0) });
  t.equal(u.status, 413, 'bgproxy answered 413');
  t.match(u.body, /Content Too Large|too large/i, 'its answer arrived');
  t.not(u.closedAfterMs, null, `the stream was closed (after ${u.closedAfterMs?.toFixed(0)} ms, ${u.written} bytes written)`);
  t.equal(u.rstCode, NGHTTP2_NO_ERROR, 'with RST_STREAM NO_ERROR');
  t.ok(hadFile, 'the body had a temp file');
  const end = Date.now() + 5000;
  while (tempFds(root) > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  t.equal(tempFds(root), 0, 'the temp file is freed');
  t.same(blue.seen, [], 'the app never saw it');
});

t.test('bgproxy refuses a declared content-length over limits.maxBodyBytes: 413, then RST_STREAM NO_ERROR, the body is not read on', async (t) => {
  const { ca, port, blue } = await setup(t, { limits: { maxBodyBytes: 1000 } });
  const declared = 50 * 1024 * 1024;
  const u = await endlessUpload(t, port, ca.pem, '/declared', { 'content-length': String(declared) }, declared);
  t.equal(u.status, 413, 'bgproxy answered 413');
  t.not(u.closedAfterMs, null, `the stream was closed (after ${u.closedAfterMs?.toFixed(0)} ms, ${u.written} bytes written)`);
  t.equal(u.rstCode, NGHTTP2_NO_ERROR, 'with RST_STREAM NO_ERROR');
  t.ok(u.written < declared, 'the client was stopped before it wrote its declared length');
  t.same(blue.seen, [], 'the app never saw it');
});
