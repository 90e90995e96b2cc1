// Pause under load: 50 keep-alive clients, 2 s paused: nothing fails, the waits show in the
// latency, the app is quiet while paused, and the next host is not paused.
import t from 'tap';
import { readHistory } from '../../src/deploy/history.js';
import { colorHandler, startBackend } from '../helpers/backend.js';
import { request } from '../helpers/http.js';
import { startLoad } from '../helpers/load.js';
import { startProxy } from '../helpers/proxy.js';

t.test('pause 2 s under 50 keep-alive clients: 0 failed, waits visible in latency, app quiet', async (t) => {
  const blue = await startBackend(t, colorHandler('blue'));
  const green = await startBackend(t, colorHandler('green'));
  const p = await startProxy(t, { blue, green });
  const latencies: Array<{ startedAt: number; ms: number }> = [];
  const load = startLoad({
    port: p.port,
    host: 'live.test',
    path: '/slow?ms=20',
    clients: 50,
    maxMs: 15_000,
    onResponse: (r) => latencies.push({ startedAt: r.startedAt, ms: r.endedAt - r.startedAt }),
  });
  t.teardown(() => load.stop());
  await new Promise((r) => setTimeout(r, 500));

  const t0 = performance.now();
  const paused = await p.bg.pause(30_000);
  const pausedAt = performance.now();
  t.equal(paused.inflightLeft, 0, 'pause returned with nothing in flight on live');
  t.equal(p.bg.target('blue').inflight, 0, 'the live app is quiet');
  // Status (below) probes the app's health path itself: count the load's requests only.
  const loadSeen = (): number => blue.seen.filter((s) => s.url.startsWith('/slow')).length;
  const seenAtPause = loadSeen();
  const next = await request(p.port, 'next.live.test');
  t.equal(next.body, 'green\n', 'the next host is not paused');
  await new Promise((r) => setTimeout(r, 2000));
  t.equal(loadSeen(), seenAtPause, 'no request reached the live app while paused');
  const status = await p.bg.status();
  t.equal(status.traffic?.pause?.waiting, 50, 'every client is waiting');
  const resumed = p.bg.resume();
  const resumedAt = performance.now();
  t.equal(resumed.released, 50);
  t.equal(resumed.timedOut, 0);
  await new Promise((r) => setTimeout(r, 500));
  const stats = await load.stop();

  t.same(stats.errors, [], 'no connection errors');
  t.same(stats.non2xx, [], 'no failed request');
  const waited = latencies.filter((l) => l.ms >= 1900);
  t.equal(waited.length, 50, 'one request per client waited the pause out');
  const max = Math.max(...latencies.map((l) => l.ms));
  t.ok(max >= 2000 && max < 3500, `longest wait ${Math.round(max)} ms`);
  const after = latencies.filter((l) => l.startedAt > resumedAt + 50);
  t.ok(after.length > 100 && after.every((l) => l.ms < 1000), `${after.length} requests after resume, none waiting`);
  t.comment(`${stats.requests} requests; pause returned in ${Math.round(pausedAt - t0)} ms; ${waited.length} waited ≥ 1.9 s; max ${Math.round(max)} ms`);
  t.same((await readHistory(p.root)).map((e) => e.action), ['pause', 'resume']);
});

t.test('pause waits for requests in flight before it returns', async (t) => {
  const blue = await startBackend(t, colorHandler('blue'));
  const green = await startBackend(t, colorHandler('green'));
  const p = await startProxy(t, { blue, green });
  const slow = request(p.port, 'live.test', { path: '/slow?ms=600' });
  while (p.bg.target('blue').inflight === 0) await new Promise((r) => setTimeout(r, 10));
  const t0 = performance.now();
  const r = await p.bg.pause(30_000);
  const ms = performance.now() - t0;
  t.equal(r.inflightLeft, 0);
  t.ok(ms >= 400, `returned after the slow request finished (${Math.round(ms)} ms)`);
  t.equal((await slow).status, 200, 'the request in flight finished normally');
  p.bg.resume();
});

t.test('a request that waits past --timeout gets 503 + Retry-After; past limits.pausedRequests, 503 at once', async (t) => {
  const blue = await startBackend(t, colorHandler('blue'));
  const green = await startBackend(t, colorHandler('green'));
  const p = await startProxy(t, { blue, green, settings: { limits: { pausedRequests: 2 } } });
  await p.bg.pause(400);
  const t0 = performance.now();
  const waiting = [request(p.port, 'live.test'), request(p.port, 'live.test')];
  while (((await p.bg.status()).traffic?.pause?.waiting ?? 0) < 2) await new Promise((r) => setTimeout(r, 10));
  const full = await request(p.port, 'live.test');
  t.equal(full.status, 503, 'the third is refused');
  t.equal(full.headers['retry-after'], '5');
  t.ok(performance.now() - t0 < 350, 'at once');
  for (const r of await Promise.all(waiting)) {
    t.equal(r.status, 503, 'timed out');
    t.equal(r.headers['retry-after'], '5');
  }
  const waitedMs = performance.now() - t0;
  t.ok(waitedMs >= 380 && waitedMs < 1500, `after the timeout (${Math.round(waitedMs)} ms)`);
  t.match((await p.bg.status()).traffic?.pause, { waiting: 0, timedOut: 2, refused: 1, timeoutMs: 400 });
  t.equal(p.bg.target('blue').served, 0, 'none reached the app');
  const back = p.bg.resume();
  t.same(back.released, 0);
  t.equal((await request(p.port, 'live.test')).status, 200);
  t.throws(() => p.bg.resume(), { code: 'BG_STATE' }, 'resume when not paused');
});

t.test('stopping serve while paused lets the held requests go on (a restart resumes)', async (t) => {
  const blue = await startBackend(t, colorHandler('blue'));
  const green = await startBackend(t, colorHandler('green'));
  const p = await startProxy(t, { blue, green });
  await p.bg.pause(30_000);
  const held = request(p.port, 'live.test');
  while (((await p.bg.status()).traffic?.pause?.waiting ?? 0) < 1) await new Promise((r) => setTimeout(r, 10));
  const t0 = performance.now();
  await p.stop();
  const r = await held;
  t.equal(r.status, 200, 'answered by the app, not cut');
  t.equal(r.body, 'blue\n');
  t.ok(performance.now() - t0 < 3000, 'without waiting for the drain timeout');
});
