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
    maxMs: 60_000,
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
  // Requests after the resume: counted, not timed (a loaded machine sends fewer per second).
  const afterResume = () => latencies.filter((l) => l.startedAt > resumedAt + 50);
  for (const until = Date.now() + 30_000; afterResume().length <= 100 && Date.now() < until; ) await new Promise((r) => setTimeout(r, 20));
  const stats = await load.stop();

  t.same(stats.errors, [], 'no connection errors');
  t.same(stats.non2xx, [], 'no failed request');
  // Held across the resume: sent before it, answered after it. Ordered, not timed.
  const waited = latencies.filter((l) => l.startedAt < resumedAt && l.startedAt + l.ms > resumedAt);
  t.equal(waited.length, 50, 'one request per client was held until the resume');
  const max = Math.max(...latencies.map((l) => l.ms));
  // Released at the resume, not at the pause's 30 s timeout; the margin is for a loaded machine.
  t.ok(max >= 2000 && max < resumedAt - t0 + 10_000, `longest wait ${Math.round(max)} ms`);
  const after = afterResume();
  t.ok(after.length > 100 && after.every((l) => l.ms < 10_000), `${after.length} requests after resume, none held`);
  t.comment(`${stats.requests} requests; pause returned in ${Math.round(pausedAt - t0)} ms; ${waited.length} held; max ${Math.round(max)} ms`);
  t.same((await readHistory(p.root)).map((e) => e.action), ['pause', 'resume']);
});

t.test('pause waits for requests in flight before it returns', async (t) => {
  const blue = await startBackend(t, colorHandler('blue'));
  const green = await startBackend(t, colorHandler('green'));
  const p = await startProxy(t, { blue, green });
  // When the app has sent the slow response: an order of events, not a duration.
  let slowAnswered = false;
  blue.server.on('request', (req: { url?: string }, res: NodeJS.EventEmitter) => {
    if (req.url?.startsWith('/slow')) res.once('finish', () => (slowAnswered = true));
  });
  const slow = request(p.port, 'live.test', { path: '/slow?ms=600' });
  while (p.bg.target('blue').inflight === 0) await new Promise((r) => setTimeout(r, 10));
  const t0 = performance.now();
  const r = await p.bg.pause(30_000);
  const ms = performance.now() - t0;
  t.equal(r.inflightLeft, 0);
  t.ok(slowAnswered, `returned after the slow request finished (${Math.round(ms)} ms)`);
  t.equal((await slow).status, 200, 'the request in flight finished normally');
  p.bg.resume();
});

t.test('a request that waits past --timeout gets 503 + Retry-After; past limits.pausedRequests, 503 at once', async (t) => {
  const blue = await startBackend(t, colorHandler('blue'));
  const green = await startBackend(t, colorHandler('green'));
  const p = await startProxy(t, { blue, green, settings: { limits: { pausedRequests: 2 } } });
  // A timeout long enough for a loaded machine to queue two requests and send a third.
  await p.bg.pause(5000);
  const t0 = performance.now();
  let answered = 0;
  const waiting = [request(p.port, 'live.test'), request(p.port, 'live.test')].map((r) => r.finally(() => answered++));
  while (((await p.bg.status()).traffic?.pause?.waiting ?? 0) < 2) await new Promise((r) => setTimeout(r, 10));
  const full = await request(p.port, 'live.test');
  t.equal(full.status, 503, 'the third is refused');
  t.equal(full.headers['retry-after'], '5');
  t.equal(answered, 0, 'at once: the two before it are still waiting');
  for (const r of await Promise.all(waiting)) {
    t.equal(r.status, 503, 'timed out');
    t.equal(r.headers['retry-after'], '5');
  }
  const waitedMs = performance.now() - t0;
  // Answered at the timeout, not held on; the upper margin is for a loaded machine.
  t.ok(waitedMs >= 4900 && waitedMs < 30_000, `after the timeout (${Math.round(waitedMs)} ms)`);
  t.match((await p.bg.status()).traffic?.pause, { waiting: 0, timedOut: 2, refused: 1, timeoutMs: 5000 });
  t.equal(p.bg.target('blue').served, 0, 'none reached the app');
  const back = p.bg.resume();
  t.same(back.released, 0);
  t.equal((await request(p.port, 'live.test')).status, 200);
  t.throws(() => p.bg.resume(), { code: 'BG_STATE' }, 'resume when not paused');
});

t.test('stopping serve while paused lets the held requests go on (a restart resumes)', async (t) => {
  const blue = await startBackend(t, colorHandler('blue'));
  const green = await startBackend(t, colorHandler('green'));
  // A drain deadline far beyond what a loaded machine takes to answer the held request.
  const p = await startProxy(t, { blue, green, settings: { drainTimeoutMs: 60_000 } });
  await p.bg.pause(30_000);
  const held = request(p.port, 'live.test');
  while (((await p.bg.status()).traffic?.pause?.waiting ?? 0) < 1) await new Promise((r) => setTimeout(r, 10));
  const t0 = performance.now();
  await p.stop();
  const r = await held;
  t.equal(r.status, 200, 'answered by the app, not cut');
  t.equal(r.body, 'blue\n');
  t.ok(performance.now() - t0 < 30_000, 'without waiting for the drain timeout (60 s)');
});
