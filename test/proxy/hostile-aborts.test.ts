// Client aborts mid-upload and mid-download, 1,000 times: each upstream request is aborted
// promptly, and sockets and heap return to their baseline.
import { EventEmitter } from 'node:events';
import net from 'node:net';
import t from 'tap';
import { startBackend } from '../helpers/backend.js';
import { heapMb, openSockets, until } from '../helpers/measure.js';
import { startProxy } from '../helpers/proxy.js';
import { stillServes } from '../helpers/raw.js';

t.test('1,000 client resets mid-upload and mid-download', async (t) => {
  const seen = new EventEmitter();
  seen.setMaxListeners(0);
  let upstreamOpen = 0;
  let upstreamRequests = 0;
  const chunk = Buffer.alloc(16 * 1024, 'd');
  const blue = await startBackend(t, (req, res) => {
    if (req.url === '/') return res.end('blue\n');
    upstreamRequests++;
    upstreamOpen++;
    res.once('close', () => upstreamOpen--);
    const id = String(req.headers['x-id']);
    if (req.url === '/upload') {
      req.resume();
      seen.emit(id);
      return;
    }
    // Download: stream until the proxy goes away.
    req.resume();
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    const pump = (): void => {
      while (!res.destroyed && res.write(chunk)) {}
      if (!res.destroyed) res.once('drain', pump);
    };
    pump();
  });
  const green = await startBackend(t, (_req, res) => res.end('green\n'));
  // Uploads are streamed here (buffering.requests off) so that each reaches the app and its
  // abort can be seen there; downloads keep response buffering on, so an abort also frees a spool.
  const p = await startProxy(t, { blue, green, settings: { buffering: { requests: false } } });

  let n = 0;
  const one = (kind: 'upload' | 'download'): Promise<void> =>
    new Promise((resolve) => {
      const id = `${kind}-${n++}`;
      const s = net.connect(p.port, '127.0.0.1');
      s.on('error', () => {});
      s.once('close', () => resolve());
      const reset = (): void => {
        if (!s.destroyed) s.resetAndDestroy();
      };
      if (kind === 'upload') {
        seen.once(id, reset);
        s.write(`POST /upload HTTP/1.1\r\nHost: live.test\r\nX-Id: ${id}\r\nContent-Length: 10000000\r\n\r\n`);
        s.write(Buffer.alloc(32 * 1024, 'u'));
      } else {
        s.write(`GET /download HTTP/1.1\r\nHost: live.test\r\nX-Id: ${id}\r\n\r\n`);
        let got = 0;
        s.on('data', (d: Buffer) => {
          got += d.length;
          if (got > 64 * 1024) reset();
        });
      }
    });
  const run = async (count: number): Promise<void> => {
    let left = count;
    const worker = async (): Promise<void> => {
      while (left-- > 0) await one(left % 2 === 0 ? 'upload' : 'download');
    };
    await Promise.all(Array.from({ length: 20 }, worker));
  };
  const settle = (): Promise<void> =>
    until(() => upstreamOpen === 0 && p.bg.target('blue').inflight === 0, 10_000, 'every upstream request to close');

  await run(100); // warm-up: pools, JIT, lazily created objects
  await settle();
  const before = { sockets: openSockets(), heap: heapMb() };
  const started = performance.now();
  await run(1000);
  await settle();
  const ms = Math.round(performance.now() - started);
  const after = { sockets: openSockets(), heap: heapMb() };
  t.comment(`1,000 aborts in ${ms} ms: sockets ${before.sockets} -> ${after.sockets}, heap ${before.heap} -> ${after.heap} MB`);
  t.equal(upstreamRequests, 1100, 'every request reached the app');
  t.equal(upstreamOpen, 0, 'every upstream request was aborted');
  t.ok(after.sockets <= before.sockets + 2, `sockets back to baseline (${before.sockets} -> ${after.sockets})`);
  t.ok(after.heap - before.heap < 10, `heap back to baseline (${before.heap} -> ${after.heap} MB)`);
  await stillServes(t, p.port);
});
