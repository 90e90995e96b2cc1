// Responses absorbed from the app while a slow client is fed at its pace: the app is free
// once it has written, memory then temp file then back-pressure at the disk bound; never for
// SSE or X-Accel-Buffering: no; HEAD/204/304 untouched; a client that leaves or stops reading
// frees its temp file; a cutover's drain waits for a buffered answer still being delivered.
import { createHash } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import t from 'tap';
import { colorHandler, startBackend } from '../helpers/backend.js';
import { request } from '../helpers/http.js';
import { until } from '../helpers/measure.js';
import { startProxy } from '../helpers/proxy.js';
import { stillServes } from '../helpers/raw.js';
import { tempFds } from '../helpers/temp-fds.js';

const MB = 1024 * 1024;

function pattern(size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i + 4 <= size; i += 4) b.writeUInt32LE((i * 2654435761) >>> 0, i);
  return b;
}

/** An app whose /big writes `size` bytes (chunked, in 64 kB writes) and counts finished answers. */
async function bigApp(t: Parameters<typeof startBackend>[0], body: Buffer, headers: http.OutgoingHttpHeaders = {}) {
  const state = { finished: 0, closed: 0 };
  const app = await startBackend(t, (req, res) => {
    if (req.url !== '/big') return res.end('blue\n');
    res.on('finish', () => state.finished++);
    res.on('close', () => state.closed++);
    res.writeHead(200, { 'content-type': 'application/octet-stream', ...headers });
    let at = 0;
    const pump = (): void => {
      while (at < body.length) {
        const piece = body.subarray(at, at + 64 * 1024);
        at += piece.length;
        if (!res.write(piece)) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
  });
  const green = await startBackend(t, colorHandler('green'));
  return { app, green, state };
}

/** A client that sends GET /big and reads nothing until resume() (then reads it all). */
function pausedClient(port: number) {
  const s = net.connect(port, '127.0.0.1');
  s.on('error', () => {});
  s.write('GET /big HTTP/1.1\r\nHost: live.test\r\nConnection: close\r\n\r\n');
  const chunks: Buffer[] = [];
  let got = 0;
  s.on('data', (d: Buffer) => {
    chunks.push(d);
    got += d.length;
  });
  s.pause();
  const ended = new Promise<Buffer>((resolve) => s.on('close', () => resolve(Buffer.concat(chunks))));
  return { s, got: () => got, resume: () => s.resume(), ended };
}

/** The body of a raw chunked HTTP/1.1 response. */
function dechunk(raw: Buffer): { head: string; body: Buffer } {
  const end = raw.indexOf('\r\n\r\n');
  const head = raw.subarray(0, end).toString();
  let at = end + 4;
  const parts: Buffer[] = [];
  for (;;) {
    const nl = raw.indexOf('\r\n', at);
    const n = Number.parseInt(raw.subarray(at, nl).toString(), 16);
    if (!(n > 0)) break;
    parts.push(raw.subarray(nl + 2, nl + 2 + n));
    at = nl + 2 + n + 2;
  }
  return { head, body: Buffer.concat(parts) };
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

t.test('a client that does not read: the app finishes at once, the client later gets every byte', async (t) => {
  // More than the kernel's socket buffers can take on the way (several MB on loopback).
  const body = pattern(32 * MB);
  const { app, green, state } = await bigApp(t, body);
  const p = await startProxy(t, { blue: app, green });
  const c = pausedClient(p.port);
  t.teardown(() => c.s.destroy());
  await until(() => state.finished === 1, 30_000, 'the app to finish writing 32 MB to a client that reads nothing');
  t.ok(c.got() < body.length, 'the client had not read it all when the app finished');
  t.ok(tempFds(p.root) > 0, 'the rest waits in a temp file');
  t.equal(p.bg.target('blue').inflight, 1, 'still in flight: the client has not got it');
  c.resume();
  const { head, body: got } = dechunk(await c.ended);
  t.match(head, /^HTTP\/1\.1 200 /);
  t.equal(got.length, body.length, 'every byte');
  t.equal(sha(got), sha(body), 'checksum matches');
  await until(() => p.bg.target('blue').inflight === 0 && tempFds(p.root) === 0, 5000, 'the temp file to close');
});

t.test('X-Accel-Buffering: no is honoured (the app waits for the client) and removed', async (t) => {
  const body = pattern(16 * MB);
  const { app, green, state } = await bigApp(t, body, { 'x-accel-buffering': 'no' });
  const p = await startProxy(t, { blue: app, green });
  const c = pausedClient(p.port);
  t.teardown(() => c.s.destroy());
  await new Promise((r) => setTimeout(r, 1500));
  t.equal(state.finished, 0, 'the app is held by back-pressure, not absorbed');
  t.equal(tempFds(p.root), 0, 'nothing spooled');
  c.resume();
  const { head, body: got } = dechunk(await c.ended);
  t.notMatch(head, /x-accel-buffering/i, 'the header does not reach the client');
  t.equal(sha(got), sha(body), 'checksum matches');
});

t.test('server-sent events stream one by one (each arrives before the app writes the next)', async (t) => {
  let next: (() => void) | null = null;
  const written: number[] = [];
  const app = await startBackend(t, (req, res) => {
    if (req.url !== '/events') return res.end('blue\n');
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    let i = 0;
    next = () => {
      if (i === 10) return void res.end();
      written.push(performance.now());
      res.write(`data: ${i++}\n\n`);
    };
    // Every 100 ms, as an app pushing events would; the client checks each arrived before the next.
    setTimeout(next, 100);
  });
  const green = await startBackend(t, colorHandler('green'));
  const p = await startProxy(t, { blue: app, green });
  const lags: number[] = [];
  const events = await new Promise<string[]>((resolve, reject) => {
    const got: string[] = [];
    http
      .get({ host: '127.0.0.1', port: p.port, path: '/events', headers: { host: 'live.test' }, agent: false }, (res) => {
        res.on('data', (d: Buffer) => {
          got.push(d.toString());
          lags.push(performance.now() - written[got.length - 1]!);
          t.equal(written.length, got.length, `event ${got.length - 1} arrived before the next was written`);
          setTimeout(() => next?.(), 100);
        });
        res.on('end', () => resolve(got));
      })
      .on('error', reject);
  });
  t.equal(events.length, 10);
  t.comment(`event lag: max ${Math.max(...lags).toFixed(1)} ms (loaded machine)`);
});

t.test('HEAD, 204 and 304 pass through buffering unchanged', async (t) => {
  const app = await startBackend(t, (req, res) => {
    if (req.url === '/204') return void res.writeHead(204).end();
    if (req.url === '/304') return void res.writeHead(304, { etag: '"x"' }).end();
    res.setHeader('content-length', 5);
    res.end(req.method === 'HEAD' ? undefined : 'blue\n');
  });
  const green = await startBackend(t, colorHandler('green'));
  const p = await startProxy(t, { blue: app, green });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  const head = await request(p.port, 'live.test', { method: 'HEAD', agent });
  t.equal(head.status, 200);
  t.equal(head.headers['content-length'], '5');
  t.equal(head.body, '');
  t.equal((await request(p.port, 'live.test', { path: '/204', agent })).status, 204);
  const nm = await request(p.port, 'live.test', { path: '/304', agent });
  t.equal(nm.status, 304);
  t.equal(nm.body, '');
  t.equal((await request(p.port, 'live.test', { agent })).body, 'blue\n', 'the same connection still serves');
});

t.test('an answer bigger than the disk bound: back-pressure on the app, every byte delivered', async (t) => {
  const body = pattern(32 * MB);
  const { app, green, state } = await bigApp(t, body);
  const p = await startProxy(t, { blue: app, green, settings: { buffering: { maxTempBytes: MB } } });
  const c = pausedClient(p.port);
  t.teardown(() => c.s.destroy());
  await until(() => tempFds(p.root) > 0, 10_000, 'a temp file');
  await new Promise((r) => setTimeout(r, 1500));
  t.equal(state.finished, 0, 'the app waits once the bound is reached');
  c.resume();
  const { body: got } = dechunk(await c.ended);
  t.equal(sha(got), sha(body), 'checksum matches');
  t.equal(state.finished, 1);
  await until(() => tempFds(p.root) === 0, 5000, 'the temp file to close');
});

t.test('a client that disconnects mid-download: temp file removed, the app socket dropped', async (t) => {
  const body = pattern(32 * MB);
  const { app, green, state } = await bigApp(t, body);
  const p = await startProxy(t, { blue: app, green });
  const c = pausedClient(p.port);
  await until(() => tempFds(p.root) > 0, 10_000, 'a temp file');
  c.s.destroy();
  await until(() => tempFds(p.root) === 0 && p.bg.target('blue').inflight === 0, 10_000, 'the temp file to close');
  await until(() => state.closed === 1, 10_000, "the app's response to end");
  await stillServes(t, p.port);
});

t.test('a client that stops reading is cut at timeouts.sendMs and its temp file removed', async (t) => {
  const body = pattern(32 * MB);
  const { app, green } = await bigApp(t, body);
  const p = await startProxy(t, { blue: app, green, settings: { timeouts: { sendMs: 1000 } } });
  const c = pausedClient(p.port);
  t.teardown(() => c.s.destroy());
  await until(() => tempFds(p.root) > 0, 10_000, 'a temp file');
  await until(() => tempFds(p.root) === 0 && p.bg.target('blue').inflight === 0, 15_000, 'the cut, and the temp file to close');
  c.resume();
  const got = await c.ended;
  t.ok(got.length < body.length, `cut before the end (${got.length} of ${body.length} bytes)`);
});

t.test("a cutover's drain waits for a buffered answer still being delivered", async (t) => {
  const body = pattern(32 * MB);
  const { app, green, state } = await bigApp(t, body);
  const p = await startProxy(t, { blue: app, green, settings: { drainTimeoutMs: 60_000 } });
  const c = pausedClient(p.port);
  t.teardown(() => c.s.destroy());
  await until(() => state.finished === 1, 30_000, 'the app to finish');
  const cutover = p.bg.cutover();
  let done = false;
  cutover.then(() => (done = true));
  await new Promise((r) => setTimeout(r, 500));
  t.notOk(done, 'the cutover waits while the client still reads');
  c.resume();
  const r = await cutover;
  t.equal(r.inflightAtSwitch, 1);
  t.equal(r.cutOff, 0, 'delivered within drainTimeoutMs');
  t.equal(sha(dechunk(await c.ended).body), sha(body));
});
