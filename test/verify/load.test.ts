import type http from 'node:http';
import t from 'tap';
import { defaultLabel, runLoad, startLoad } from '../../src/verify/load.js';
import { summarize } from '../../src/verify/summary.js';
import { startBackend, startFront } from './fixtures/servers.js';

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

t.test('a switch mid-run: zero failures, both releases, blue then green', async (t) => {
  const blue = await startBackend(t, 'blue', 'v1');
  const green = await startBackend(t, 'green', 'v2');
  const front = await startFront(t, blue.port);
  const load = startLoad({
    url: `http://127.0.0.1:${front.port}/`,
    host: 'live.test',
    durationMs: 2000,
    connections: 10,
    posts: true,
    websocket: true,
  });
  await delay(1000);
  load.mark('cutover');
  front.target = green.port;
  const result = await load.done;
  const s = summarize(result);

  t.equal(result.keepAliveClients, 10);
  t.equal(result.oneShotClients, 3);
  t.ok(s.requests > 20, `${s.requests} requests`);
  t.equal(s.failed, 0, 'no failed request');
  t.ok(s.keepAlive.requests > 0 && s.oneShot.requests > 0 && s.posts.requests > 0);
  t.same(
    s.labels.map((l) => l.label),
    ['blue v1', 'green v2'],
  );
  t.same(
    s.transitions.map((x) => x.label),
    ['blue v1', 'green v2'],
  );
  const cut = result.marks[0]!;
  t.equal(cut.label, 'cutover');
  // Causal, so true however loaded the machine, and false if marks and samples were not on
  // one clock: nothing issued after the mark was answered by blue, and the first green
  // answer arrived after it.
  t.ok(result.samples.filter((x) => x.label === 'blue v1').every((x) => x.t <= cut.t), 'every blue answer was asked for before the mark');
  const firstGreen = result.samples.find((x) => x.label === 'green v2' && x.t === s.transitions[1]!.t)!;
  t.ok(firstGreen.t + firstGreen.ms >= cut.t, 'the switch shows at the mark: the first green answer came after it');
  t.ok(
    result.samples.every((x) => Number.isFinite(x.ms) && x.ms >= 0 && x.t >= 0),
    'every sample has a latency',
  );
  // The upper bound only says it ended (loose for a loaded machine).
  t.ok(result.durationMs >= 1900 && result.durationMs < 30_000, `ran about its 2 s (${result.durationMs} ms)`);
  t.ok(result.loadMs >= 1900 && result.loadMs <= result.durationMs);
  t.match(result.ws, { ok: true, opened: true, lost: 0, closedAt: null, error: null });
  t.ok(result.ws!.sent >= 10, `${result.ws!.sent} websocket messages`);
});

t.test('a backend that goes away mid-run: failures counted by kind, not thrown', async (t) => {
  const blue = await startBackend(t, 'blue', 'v1');
  const load = startLoad({ url: `http://127.0.0.1:${blue.port}/`, durationMs: 1200, connections: 4, websocket: true });
  await delay(500);
  await blue.close();
  const result = await load.done;
  const s = summarize(result);
  t.ok(s.labels[0]!.count > 0, 'answered before the close');
  t.ok(s.failedByKind.connect > 0, `${s.failedByKind.connect} connect failures`);
  t.equal(s.failed, s.failedByKind.connect + s.failedByKind.reset, 'only connect or reset');
  t.equal(s.ok, false);
  t.equal(result.ws?.ok, false);
  t.ok(result.ws!.closedAt! > 400, 'websocket closed when the backend went away');
});

t.test('a slow backend: timeouts; non-2xx counted; custom label', async (t) => {
  let n = 0;
  const slow = await startBackend(t, 'blue', 'v1', (_req: http.IncomingMessage, res: http.ServerResponse) => {
    n++;
    if (n % 2 === 0) return true; // never answers
    res.writeHead(503, { 'content-type': 'text/plain' });
    res.end('draining\n');
    return true;
  });
  const result = await runLoad({
    url: `http://127.0.0.1:${slow.port}/`,
    durationMs: 600,
    connections: 2,
    requestTimeoutMs: 200,
    label: (r) => `status ${r.status}`,
  });
  const s = summarize(result);
  t.ok(s.failedByKind.timeout > 0, 'timeouts');
  t.ok(s.failedByKind.non2xx > 0, 'non-2xx');
  t.equal(s.failed, s.requests);
  t.equal(result.samples.find((x) => x.status === 503)?.label, 'status 503');
  // Silent requests would hang it for good; the bound is loose for a loaded machine.
  t.ok(result.durationMs < 30_000, `ends soon after duration + one timeout, not hanging on the silent requests (${result.durationMs} ms)`);
});

t.test('stop() and an aborted signal end the run early without failures', async (t) => {
  const blue = await startBackend(t, 'blue', 'v1');
  const url = `http://127.0.0.1:${blue.port}/`;
  const load = startLoad({ url, durationMs: 120_000, connections: 2 });
  await delay(200);
  load.stop();
  const r1 = await load.done;
  // Far below the 120 s duration: stop() ended it (bounds loose for a loaded 2-core box).
  t.ok(r1.durationMs < 60_000);
  t.ok(r1.loadMs >= 150 && r1.loadMs < 60_000, `load ran until stop() (${r1.loadMs} ms)`);
  t.ok(r1.samples.length > 0);
  t.ok(r1.samples.every((s) => s.error === null));

  const ac = new AbortController();
  const seen: number[] = [];
  const p = runLoad({ url, durationMs: 120_000, connections: 2, signal: ac.signal, onSample: (s) => seen.push(s.t) });
  setTimeout(() => ac.abort(), 150);
  const r2 = await p;
  t.ok(r2.durationMs < 60_000);
  t.equal(seen.length, r2.samples.length, 'onSample saw every sample');
});

t.test('default label', async (t) => {
  t.equal(defaultLabel({ status: 200, headers: { 'x-color': 'green', 'x-version': 'v2' }, body: '' }), 'green v2');
  t.equal(defaultLabel({ status: 200, headers: { 'x-color': 'green' }, body: 'x' }), 'green');
  t.equal(defaultLabel({ status: 200, headers: {}, body: '\n  hello from blue  \nmore' }), 'hello from blue');
  t.equal(defaultLabel({ status: 200, headers: {}, body: 'y'.repeat(100) }).length, 40);
});

t.test('a throwing onSample rejects done after the clients stopped', async (t) => {
  const blue = await startBackend(t, 'blue', 'v1');
  const boom = new Error('boom');
  const p = runLoad({
    url: `http://127.0.0.1:${blue.port}/`,
    durationMs: 5000,
    connections: 2,
    onSample: () => {
      throw boom;
    },
  });
  await t.rejects(p, boom);
});
