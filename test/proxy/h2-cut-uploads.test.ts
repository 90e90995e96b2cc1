// An HTTP/2 upload cut short (the client resets the stream, with any code, NO_ERROR too, or
// drops the connection) never reaches the app as a complete request. node:http2 ends a
// stream's readable side ('end') when the client resets it and when its session goes
// away, as if the body were whole; taken at its word, the proxy sent a streamed chunked
// body's last chunk (the app saw a whole, shorter body) and sent a buffered body on to the
// app once "complete". Now the upstream request is abandoned: no last chunk, its socket
// destroyed; a buffered body is dropped unsent, its temp file freed. Cuts come as raw
// frames and from node:http2's client.
import type http from 'node:http';
import http2 from 'node:http2';
import t from 'tap';
import { colorHandler, startBackend } from '../helpers/backend.js';
import { FLAG, FRAME, frame, h2Connect, h2Request, hpack, rawH2, requestFields } from '../helpers/h2.js';
import { startProxy } from '../helpers/proxy.js';
import { tempFds } from '../helpers/temp-fds.js';
import { issueCert, makeCa } from '../helpers/tls.js';

type T = { teardown(fn: () => unknown): void };
const { NGHTTP2_CANCEL, NGHTTP2_NO_ERROR } = http2.constants;

/** What the app saw of one request: bytes of body, and whether it ended whole or was cut. */
interface Seen {
  url: string;
  bytes: number;
  outcome: 'open' | 'complete' | 'cut';
}

function recorder(seen: Seen[]): http.RequestListener {
  return (req, res) => {
    const r: Seen = { url: req.url ?? '', bytes: 0, outcome: 'open' };
    seen.push(r);
    req.on('data', (c: Buffer) => (r.bytes += c.length));
    req.on('end', () => {
      if (r.outcome === 'open') r.outcome = 'complete';
      res.end(`got ${r.bytes}\n`);
    });
    const cut = (): void => {
      if (r.outcome === 'open') r.outcome = 'cut';
    };
    req.on('aborted', cut);
    req.on('error', cut);
    res.on('close', cut);
  };
}

async function setup(t: T, buffering: boolean) {
  const ca = makeCa(t);
  const cert = issueCert(ca, 'live', ['live.test', '*.live.test']);
  const seen: Seen[] = [];
  const blue = await startBackend(t, recorder(seen));
  const green = await startBackend(t, colorHandler('green'));
  const p = await startProxy(t, {
    blue,
    green,
    settings: { tls: { listen: '127.0.0.1:0', certificates: [cert] }, buffering: { requests: buffering, responses: buffering } },
  });
  return { ca, seen, root: p.root, port: Number(p.tlsListen!.split(':').pop()) };
}

async function until(cond: () => boolean, ms = 10_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  return cond();
}

// node:http2's client: stream.destroy() sends RST_STREAM NO_ERROR, destroy(err) INTERNAL_ERROR,
// session.destroy() a GOAWAY and the end of the connection. (Its stream.close() sends an
// empty END_STREAM first: on the wire the body is whole, so it is forwarded as such.)
type Cut = 'stream.destroy()' | 'stream.destroy(err)' | 'connection dropped';
const CUTS: Cut[] = ['stream.destroy()', 'stream.destroy(err)', 'connection dropped'];

/** Opens an upload on a session of its own, writes `part`, waits for `ready`, then cuts it. */
async function cutUpload(t: T, port: number, ca: Buffer, path: string, part: Buffer, cut: Cut, ready: () => boolean, length?: number): Promise<void> {
  const s = h2Connect(t, port, ca);
  const headers: http2.OutgoingHttpHeaders = { ':method': 'POST', ':path': path, ':authority': 'live.test' };
  if (length !== undefined) headers['content-length'] = String(length);
  const req = s.request(headers, { endStream: false });
  req.on('error', () => {});
  req.write(part);
  await until(ready);
  if (cut === 'connection dropped') s.destroy();
  else if (cut === 'stream.destroy()') req.destroy();
  else req.destroy(new Error('upload abandoned'));
}

/** A small upload on a session of its own, answered by the app (`path` /after: the proxy serves on after a cut). */
async function servedAfter(t: T, port: number, ca: Buffer, path = '/after'): Promise<string> {
  const s = h2Connect(t, port, ca);
  const r = await h2Request(s, { ':method': 'POST', ':path': path, ':authority': 'live.test' }, ['ab', 'cd']);
  s.close();
  return r.body;
}

for (const cut of CUTS) {
  t.test(`buffering off, no content-length (chunked to the app), ${cut}: the app never sees the body end`, async (t) => {
    const { ca, seen, port } = await setup(t, false);
    await cutUpload(t, port, ca.pem, '/up', Buffer.alloc(1000, 'a'), cut, () => seen[0]?.bytes === 1000);
    t.equal(seen[0]?.bytes, 1000, 'the app had the first 1000 bytes');
    t.ok(await until(() => seen[0]!.outcome !== 'open'), 'the upstream request was ended');
    t.equal(seen[0]!.outcome, 'cut', 'the app saw its request cut off, not complete');
    t.equal(await servedAfter(t, port, ca.pem), 'got 4\n', 'the next upload is served whole');
  });
}

for (const buffering of [false, true]) {
  for (const code of [NGHTTP2_NO_ERROR, NGHTTP2_CANCEL]) {
    t.test(`buffering ${buffering ? 'on' : 'off'}, raw frames: HEADERS, DATA, RST_STREAM ${code} without END_STREAM: the body never completes at the app`, async (t) => {
      const { ca, seen, port } = await setup(t, buffering);
      if (buffering) t.equal(await servedAfter(t, port, ca.pem, '/before'), 'got 4\n', 'a first upload is served');
      const c = await rawH2(t, port, ca.pem);
      c.write(frame(FRAME.HEADERS, FLAG.END_HEADERS, 1, hpack(requestFields('/up', 'live.test', [], 'POST'))));
      c.write(frame(FRAME.DATA, 0, 1, Buffer.alloc(1000, 'a')));
      if (buffering) await new Promise((r) => setTimeout(r, 300));
      else t.ok(await until(() => seen[0]?.bytes === 1000), 'the app had the first 1000 bytes');
      const rst = Buffer.alloc(4);
      rst.writeUInt32BE(code);
      c.write(frame(FRAME.RST_STREAM, 0, 1, rst));
      t.equal(await servedAfter(t, port, ca.pem), 'got 4\n', 'the next upload is served whole');
      await new Promise((r) => setTimeout(r, 300));
      const up = seen.find((s) => s.url === '/up');
      if (buffering) t.equal(up, undefined, 'the cut upload never reached the app');
      else {
        t.ok(await until(() => up!.outcome !== 'open'), 'the upstream request was ended');
        t.equal(up!.outcome, 'cut', 'the app saw its request cut off, not complete');
      }
    });
  }
}

t.test('buffering off, content-length 5000, stream.destroy() after 1000 bytes: the app sees the request cut off', async (t) => {
  const { ca, seen, port } = await setup(t, false);
  await cutUpload(t, port, ca.pem, '/up', Buffer.alloc(1000, 'a'), 'stream.destroy()', () => seen[0]?.bytes === 1000, 5000);
  t.ok(await until(() => seen[0]?.outcome !== 'open'), 'the upstream request was ended');
  t.equal(seen[0]?.outcome, 'cut', 'the app saw its request cut off');
  t.equal(await servedAfter(t, port, ca.pem), 'got 4\n', 'the next upload is served whole');
});

for (const cut of CUTS) {
  t.test(`buffering on, no content-length, ${cut}: the short body is never sent to the app`, async (t) => {
    const { ca, seen, port } = await setup(t, true);
    // A pooled connection to the app is ready: a body sent on it would arrive at once.
    t.equal(await servedAfter(t, port, ca.pem, '/before'), 'got 4\n', 'a first upload is served');
    let waited = false;
    setTimeout(() => (waited = true), 300);
    await cutUpload(t, port, ca.pem, '/up', Buffer.alloc(1000, 'a'), cut, () => waited);
    t.equal(await servedAfter(t, port, ca.pem), 'got 4\n', 'the next upload is served whole');
    await new Promise((r) => setTimeout(r, 300));
    t.same(
      seen.map((s) => s.url),
      ['/before', '/after'],
      'the cut upload never reached the app',
    );
  });
}

t.test('buffering on, content-length 5000, stream.destroy() after 1000 bytes: nothing reaches the app', async (t) => {
  const { ca, seen, port } = await setup(t, true);
  t.equal(await servedAfter(t, port, ca.pem, '/before'), 'got 4\n', 'a first upload is served');
  let waited = false;
  setTimeout(() => (waited = true), 300);
  await cutUpload(t, port, ca.pem, '/up', Buffer.alloc(1000, 'a'), 'stream.destroy()', () => waited, 5000);
  t.equal(await servedAfter(t, port, ca.pem), 'got 4\n', 'the next upload is served whole');
  await new Promise((r) => setTimeout(r, 300));
  t.same(
    seen.map((s) => s.url),
    ['/before', '/after'],
    'the cut upload never reached the app',
  );
});

for (const cut of ['stream.destroy()', 'connection dropped'] as const) {
  t.test(`buffering on, a body already in a temp file, ${cut}: never sent, the temp file freed`, async (t) => {
    const { ca, seen, port, root } = await setup(t, true);
    t.equal(await servedAfter(t, port, ca.pem, '/before'), 'got 4\n', 'a first upload is served');
    // Past buffering.memoryBytes (64 KiB): the rest goes to a temp file.
    await cutUpload(t, port, ca.pem, '/big', Buffer.alloc(512 * 1024, 'b'), cut, () => tempFds(root) > 0);
    t.ok(await until(() => tempFds(root) === 0), 'the temp file is closed');
    t.equal(await servedAfter(t, port, ca.pem), 'got 4\n', 'the next upload is served whole');
    await new Promise((r) => setTimeout(r, 300));
    t.same(
      seen.map((s) => s.url),
      ['/before', '/after'],
      'the cut upload never reached the app',
    );
  });
}
