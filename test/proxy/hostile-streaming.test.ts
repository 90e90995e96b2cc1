// Streaming: large chunked bodies both ways with matching checksums and bounded proxy
// memory (backpressure, not buffering); an SSE stream's first event arrives at once.
import { createHash } from 'node:crypto';
import http from 'node:http';
import t from 'tap';
import { colorHandler, startBackend } from '../helpers/backend.js';
import { get } from '../helpers/http.js';
import { heapMb, retainedMb } from '../helpers/measure.js';
import { startProxy } from '../helpers/proxy.js';
import { stillServes } from '../helpers/raw.js';

const MB = 1024 * 1024;
const TOTAL = 64 * MB;

/** Deterministic pseudo-random 64 kB blocks, so the checksum means something. */
function block(i: number): Buffer {
  const b = Buffer.alloc(64 * 1024);
  for (let j = 0; j < b.length; j += 4) b.writeUInt32LE((i * 2654435761 + j * 40503) >>> 0, j);
  return b;
}

t.test('64 MB chunked upload and download: checksums match, proxy memory bounded', async (t) => {
  const blue = await startBackend(t, (req, res) => {
    if (req.url === '/upload') {
      const h = createHash('sha256');
      let n = 0;
      req.on('data', (c: Buffer) => {
        h.update(c);
        n += c.length;
      });
      req.on('end', () => res.end(`${n} ${h.digest('hex')}`));
      return;
    }
    if (req.url === '/download') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' }); // chunked
      let i = 0;
      const pump = (): void => {
        while (i * 64 * 1024 < TOTAL) {
          if (!res.write(block(i++))) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
      return;
    }
    res.end('blue\n');
  });
  const green = await startBackend(t, colorHandler('green'));
  // What this test measures is streaming with back-pressure (what buffering off, SSE and
  // X-Accel-Buffering: no still do); the buffered path has its own test (buffering.test.ts).
  const p = await startProxy(t, { blue, green, settings: { buffering: { requests: false, responses: false } } });
  // The first assertion makes tap map its call site through the test files' source maps (tsx
  // writes them inline), which Node then keeps: ~11 MB of heap on Node 22. Made before the
  // baseline, so the comparison below sees only what the transfers leave behind.
  t.equal(await get(p.port, 'live.test'), 'blue', 'the proxy serves before the transfers');
  const heapBefore = heapMb();
  // What the process holds on to during the transfers, sampled after a full GC. RSS is no
  // measure here: client, app and proxy share this process, and RSS grows with socket
  // buffers and uncollected garbage (48-88 MB on Node 22 for this test).
  const retainedBefore = retainedMb();
  let peakRetained = retainedBefore;
  const sample = setInterval(() => (peakRetained = Math.max(peakRetained, retainedMb())), 50);
  t.teardown(() => clearInterval(sample));

  const expected = createHash('sha256');
  for (let i = 0; i * 64 * 1024 < TOTAL; i++) expected.update(block(i));
  const want = expected.digest('hex');

  const up = await new Promise<string>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: p.port, method: 'POST', path: '/upload', headers: { host: 'live.test', 'transfer-encoding': 'chunked' }, agent: false }, (res) => {
      let b = '';
      res.on('data', (c: Buffer) => (b += c.toString()));
      res.on('end', () => resolve(b));
    });
    req.on('error', reject);
    let i = 0;
    const pump = (): void => {
      while (i * 64 * 1024 < TOTAL) {
        if (!req.write(block(i++))) return void req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
  t.equal(up, `${TOTAL} ${want}`, 'upload checksum matches');

  const down = await new Promise<string>((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port: p.port, path: '/download', headers: { host: 'live.test' }, agent: false }, (res) => {
        const h = createHash('sha256');
        let n = 0;
        res.on('data', (c: Buffer) => {
          h.update(c);
          n += c.length;
        });
        res.on('end', () => resolve(`${n} ${h.digest('hex')}`));
        res.on('error', reject);
      })
      .on('error', reject);
  });
  t.equal(down, `${TOTAL} ${want}`, 'download checksum matches');
  clearInterval(sample);
  const heapAfter = heapMb();
  const growth = Math.round((peakRetained - retainedBefore) * 10) / 10;
  t.comment(`128 MB streamed; heap ${heapBefore} -> ${heapAfter} MB, peak retained growth ${growth} MB`);
  // A body buffered whole anywhere (client, proxy or app side) would be held at 64 MB.
  t.ok(growth < 48, `never three quarters of the body held at once: streamed, not buffered (peak +${growth} MB)`);
  t.ok(heapAfter - heapBefore < 10, 'heap back to baseline');
  await stillServes(t, p.port);
});

t.test("an SSE stream's first event arrives at once, not when the stream ends", async (t) => {
  let release: (() => void) | undefined;
  const blue = await startBackend(t, (req, res) => {
    if (req.url !== '/events') return res.end('blue\n');
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.write('data: first\n\n');
    release = () => res.end('data: last\n\n');
  });
  const green = await startBackend(t, colorHandler('green'));
  const p = await startProxy(t, { blue, green });
  const first = await new Promise<string>((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port: p.port, path: '/events', headers: { host: 'live.test' }, agent: false }, (res) => {
      t.equal(res.headers['content-type'], 'text/event-stream');
      res.once('data', (c: Buffer) => resolve(c.toString()));
      res.on('error', () => {});
    });
    req.on('error', reject);
    t.teardown(() => req.destroy());
  });
  t.equal(first, 'data: first\n\n', 'the first event arrived while the stream is still open');
  t.ok(release, 'the app has not ended the stream');
  release?.();
  await stillServes(t, p.port);
});
