import t from 'tap';
import type { LoadResult, Sample } from '../../src/verify/load.js';
import { formatSummary, formatTimeline, summarize, transitions } from '../../src/verify/summary.js';

const ok = (t: number, label: string, ms = 2, extra: Partial<Sample> = {}): Sample => ({
  t,
  ms,
  status: 200,
  label,
  error: null,
  keepAlive: true,
  method: 'GET',
  client: 0,
  ...extra,
});

function result(samples: Sample[], extra: Partial<LoadResult> = {}): LoadResult {
  return {
    url: 'http://127.0.0.1:1/',
    startedAt: 0,
    durationMs: 2000,
    loadMs: 2000,
    keepAliveClients: 1,
    oneShotClients: 2,
    samples,
    marks: [],
    ws: null,
    ...extra,
  };
}

t.test('summary counts requests, failures by kind, labels in order of first appearance', async (t) => {
  const samples: Sample[] = [
    ok(0, 'blue v1', 1),
    ok(10, 'blue v1', 3, { keepAlive: false }),
    ok(20, 'green v2', 5, { method: 'POST' }),
    { ...ok(30, 'x', 7), status: 502, label: '502 Bad Gateway', error: 'non2xx' },
    { ...ok(40, 'x', 0.5), status: null, label: null, error: 'connect', keepAlive: false },
    { ...ok(50, 'x', 0.5), status: null, label: null, error: 'reset' },
  ];
  const s = summarize(result(samples, { marks: [{ t: 15, label: 'cutover' }] }));
  t.equal(s.requests, 6);
  t.equal(s.failed, 3);
  t.same(s.failedByKind, { connect: 1, reset: 1, timeout: 0, non2xx: 1, other: 0 });
  t.equal(s.reqPerSec, 3);
  t.same(s.labels, [
    { label: 'blue v1', count: 2 },
    { label: 'green v2', count: 1 },
  ]);
  t.same(s.keepAlive, { requests: 4, failed: 2 });
  t.same(s.oneShot, { requests: 2, failed: 1 });
  t.same(s.posts, { requests: 1, failed: 0 });
  t.match(s.latency, { count: 4, p50: 3, max: 7 }, 'latency over responses only');
  t.equal(s.ok, false);

  const text = formatSummary(s);
  t.match(text, /Requests:\s+6\n/);
  t.match(text, /Failed requests:\s+3\s+\(connect: 1, reset: 1, timeout: 0, non-2xx: 1\)/);
  t.match(text, /Requests per second:\s+3\.0/);
  t.match(text, /99%\s+7\.0/);
  t.match(text, /Timeline: 0\.0s blue v1 -> 0\.0s green v2/);
  t.match(text, /Marks:\s+0\.0s cutover/);
  t.notMatch(text, /other/);
});

t.test('a clean run is ok and says Failed requests: 0', async (t) => {
  const s = summarize(result([ok(0, 'blue v1'), ok(5, 'blue v1')]));
  t.equal(s.ok, true);
  t.match(formatSummary(s), /Failed requests:\s+0\n/);
});

t.test('transitions follow switches, ignore stragglers, keep real rollbacks', async (t) => {
  const samples = [
    ok(0, 'blue v1'),
    ok(900, 'blue v1'),
    ok(1000, 'green v2', 300), // the first answer of green ends at 1300
    ok(1001, 'blue v1'), // issued before that: may have reached the proxy before the switch
    ok(1250, 'blue v1', 5), // still before 1300: ignored
    ok(1002, 'green v2', 2), // ends at 1004...
    ok(1010, 'blue v1'), // ...so blue answering a request issued at 1010 is a switch back
    ok(1500, 'green v2'),
    ok(3000, 'blue v1'), // a rollback
    ok(3100, 'blue v1'),
    { ...ok(3200, 'x'), status: null, label: null, error: 'timeout' as const },
  ];
  t.same(transitions(samples), [
    { t: 0, label: 'blue v1' },
    { t: 1000, label: 'green v2' },
    { t: 1010, label: 'blue v1' },
    { t: 1500, label: 'green v2' },
    { t: 3000, label: 'blue v1' },
  ]);
  const clean = samples.filter((s) => s.t !== 1002);
  t.same(
    transitions(clean).map((x) => x.t),
    [0, 1000, 3000],
    'stragglers issued before the first green answer completed are not switches',
  );
  t.same(transitions([]), []);
  t.equal(formatTimeline(transitions(clean)), '0.0s blue v1 -> 1.0s green v2 -> 3.0s blue v1');
  t.equal(formatTimeline([]), '(no successful response)');
});

t.test('a third release after a switch is always a transition', async (t) => {
  const samples = [ok(0, 'blue v1', 100), ok(10, 'green v2', 100), ok(20, 'blue v3', 1)];
  t.same(
    transitions(samples).map((x) => x.label),
    ['blue v1', 'green v2', 'blue v3'],
  );
});

t.test('the websocket outcome shows in the summary', async (t) => {
  const ws = { ok: false, opened: true, sent: 10, echoed: 8, lost: 2, closedAt: 870, error: 'closed with code 1006' };
  const s = summarize(result([ok(0, 'blue v1')], { ws }));
  t.equal(s.ok, false);
  t.match(formatSummary(s), /Websocket:\s+FAILED \(closed at 0\.9s: closed with code 1006\); 10 sent, 8 echoed/);
});
