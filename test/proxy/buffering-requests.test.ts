// Request bodies read whole before the app is contacted: de-chunked with a Content-Length,
// through a temp file when large, Expect: 100-continue answered here, limits.maxBodyBytes
// and the disk bound refused before anything reaches the app, a slow upload cut at requestMs.
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import t from 'tap';
import { startBackend } from '../helpers/backend.js';
import { until } from '../helpers/measure.js';
import { startProxy } from '../helpers/proxy.js';
import { stillServes } from '../helpers/raw.js';
import { tempFds } from '../helpers/temp-fds.js';

/** An app that answers /upload with what it received: length, framing headers, checksum. */
async function uploadApp(t: Parameters<typeof startBackend>[0]) {
  const seen: string[] = [];
  const app = await startBackend(t, (req, res) => {
    if (req.url !== '/upload') return res.end('blue\n');
    seen.push(req.url);
    const h = createHash('sha256');
    let n = 0;
    req.on('data', (c: Buffer) => {
      h.update(c);
      n += c.length;
    });
    req.on('end', () =>
      res.end(JSON.stringify({ n, sha: h.digest('hex'), cl: req.headers['content-length'] ?? null, te: req.headers['transfer-encoding'] ?? null, expect: req.headers.expect ?? null })),
    );
  });
  const green = await startBackend(t, (_req, res) => res.end('green\n'));
  return { app, seen, green };
}

function post(port: number, body: Buffer, headers: http.OutgoingHttpHeaders): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/upload', headers: { host: 'live.test', ...headers }, agent: false }, (res) => {
      let b = '';
      res.on('data', (c: Buffer) => (b += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: b }));
    });
    req.on('error', reject);
    // Written in pieces so the chunked framing has many chunks.
    for (let i = 0; i < body.length; i += 100_000) req.write(body.subarray(i, i + 100_000));
    req.end();
  });
}

t.test('a chunked upload reaches the app whole, de-chunked, with its Content-Length (memory and temp file)', async (t) => {
  const { app, green } = await uploadApp(t);
  const p = await startProxy(t, { blue: app, green });
  for (const size of [1000, 3 * 1024 * 1024]) {
    const body = Buffer.alloc(size);
    for (let i = 0; i < size; i += 4) body.writeUInt32LE((i * 2654435761) >>> 0, i);
    const r = await post(p.port, body, { 'transfer-encoding': 'chunked' });
    const got = JSON.parse(r.body);
    t.equal(r.status, 200);
    t.equal(got.n, size, `${size} bytes arrived`);
    t.equal(got.sha, createHash('sha256').update(body).digest('hex'), 'checksum matches');
    t.equal(got.cl, String(size), 'the app got a Content-Length');
    t.equal(got.te, null, 'and no Transfer-Encoding');
  }
  t.same(readdirSync(path.join(p.root, 'run', 'tmp')), [], 'no temp file left in the directory');
  t.equal(tempFds(p.root), 0, 'no temp file held open');
});

t.test('Expect: 100-continue is answered by bgproxy; a declared body over limits.maxBodyBytes gets 413 first', async (t) => {
  const { app, seen, green } = await uploadApp(t);
  const p = await startProxy(t, { blue: app, green, settings: { limits: { maxBodyBytes: 1000 } } });
  const ok = await new Promise<string>((resolve) => {
    const s = net.connect(p.port, '127.0.0.1');
    let got = '';
    s.on('data', (d) => {
      got += d.toString();
      if (got.startsWith('HTTP/1.1 100 Continue\r\n\r\n') && !got.includes('\r\n\r\nHTTP')) s.write('x'.repeat(10));
      if (got.includes('"n":10')) {
        s.destroy();
        resolve(got);
      }
    });
    s.write('POST /upload HTTP/1.1\r\nHost: live.test\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n');
  });
  t.match(ok, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200/, '100 Continue, then the answer');
  t.match(ok, /"expect":null/, 'the app never saw Expect');
  const refused = await new Promise<string>((resolve) => {
    const s = net.connect(p.port, '127.0.0.1');
    let got = '';
    s.on('data', (d) => (got += d.toString()));
    s.on('close', () => resolve(got));
    s.write('POST /upload HTTP/1.1\r\nHost: live.test\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n');
  });
  t.match(refused, /^HTTP\/1\.1 413 /, '413');
  t.notMatch(refused, /100 Continue/, 'no 100 Continue for a body that is refused');
  t.match(refused, /Connection: close/i);
  const plain = await post(p.port, Buffer.alloc(5000), {});
  t.equal(plain.status, 413, 'a declared length over the limit without Expect: 413 too');
  t.equal(seen.length, 1, 'only the accepted upload reached the app');
});

t.test('a chunked body over limits.maxBodyBytes gets 413 with Connection: close; the app never sees it', async (t) => {
  const { app, seen, green } = await uploadApp(t);
  const p = await startProxy(t, { blue: app, green, settings: { limits: { maxBodyBytes: 100_000 } } });
  const r = await post(p.port, Buffer.alloc(300_000), { 'transfer-encoding': 'chunked' }).catch((err: Error) => ({ status: -1, headers: {} as http.IncomingHttpHeaders, body: err.message }));
  // The client may see the 413, or a reset if it was still writing when the socket closed.
  if (r.status !== -1) {
    t.equal(r.status, 413);
    t.equal((r.headers as Record<string, string | undefined>).connection, 'close');
  } else t.pass(`client saw ${r.body} while still writing`);
  t.equal(seen.length, 0, 'nothing reached the app');
  const small = await post(p.port, Buffer.alloc(50_000), { 'transfer-encoding': 'chunked' });
  t.equal(JSON.parse(small.body).n, 50_000, 'a body under the limit passes');
  await stillServes(t, p.port);
});

t.test('over buffering.maxTempBytes an upload gets 503 with Retry-After, and nothing fills the disk', async (t) => {
  const { app, seen, green } = await uploadApp(t);
  const p = await startProxy(t, { blue: app, green, settings: { buffering: { memoryBytes: 4096, maxTempBytes: 50_000 } } });
  const r = await post(p.port, Buffer.alloc(200_000), {}).catch((err: Error) => ({ status: -1, headers: {} as http.IncomingHttpHeaders, body: err.message }));
  if (r.status !== -1) {
    t.equal(r.status, 503);
    t.ok(Number(r.headers['retry-after']) > 0, 'with Retry-After');
  } else t.pass(`client saw ${r.body} while still writing`);
  t.equal(seen.length, 0, 'nothing reached the app');
  const fits = await post(p.port, Buffer.alloc(30_000), {});
  t.equal(JSON.parse(fits.body).n, 30_000, 'an upload that fits the bound still passes');
  await until(() => tempFds(p.root) === 0, 5000, 'temp files to close');
});

t.test('a slow buffered upload is cut at timeouts.requestMs without ever reaching the app', async (t) => {
  const { app, seen, green } = await uploadApp(t);
  const p = await startProxy(t, { blue: app, green, settings: { timeouts: { headersMs: 1000, requestMs: 1500 } } });
  const s = net.connect(p.port, '127.0.0.1');
  s.on('error', () => {});
  s.write('POST /upload HTTP/1.1\r\nHost: live.test\r\nContent-Length: 100000\r\n\r\n');
  const drip = setInterval(() => s.writable && s.write('x'.repeat(100)), 100);
  t.teardown(() => {
    clearInterval(drip);
    s.destroy();
  });
  let reply = '';
  s.on('data', (d) => (reply += d.toString()));
  await new Promise<void>((resolve) => s.once('close', () => resolve()));
  clearInterval(drip);
  t.ok(reply === '' || reply.startsWith('HTTP/1.1 408 '), `a 408 or nothing (${JSON.stringify(reply.slice(0, 20))})`);
  t.equal(seen.length, 0, 'the app never saw the request');
  await until(() => p.bg.target('blue').inflight === 0, 5000, 'nothing in flight');
  t.equal(tempFds(p.root), 0, 'no temp file held');
  await stillServes(t, p.port);
});
