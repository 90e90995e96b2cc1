import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type http from 'node:http';
import t, { type Test } from 'tap';
import { type Backend, startBackend } from '../helpers/backend.js';
import { request } from '../helpers/http.js';
import { parseMetrics, promtool, scrape, select, sample } from '../helpers/metrics.js';
import { startProxy, type TestProxy } from '../helpers/proxy.js';
import { issueCert, makeCa } from '../helpers/tls.js';

/** Answers its color; /missing is a 404, /slow waits 30 ms. */
function app(color: string): http.RequestListener {
  return (req, res) => {
    const reply = (): void => {
      res.writeHead(req.url === '/missing' ? 404 : 200, { 'content-type': 'text/plain' });
      res.end(`${color}\n`);
    };
    req.resume();
    req.once('end', () => (req.url === '/slow' ? setTimeout(reply, 30) : reply()));
  };
}

async function setup(t: Test): Promise<{ proxy: TestProxy; blue: Backend; green: Backend; metrics: string }> {
  const blue = await startBackend(t, app('blue'));
  const green = await startBackend(t, app('green'));
  const proxy = await startProxy(t, { blue, green, settings: { unknownHost: 'reject', metrics: { listen: '127.0.0.1:0' } } });
  t.ok(proxy.metricsListen, 'the metrics listener is up');
  return { proxy, blue, green, metrics: proxy.metricsListen! };
}

t.test('the counts equal the requests sent, exactly; promtool accepts the text', async (t) => {
  const { proxy, metrics } = await setup(t);
  const sent: Array<[host: string, path: string, times: number]> = [
    ['live.test', '/', 7],
    ['live.test', '/missing', 3],
    ['live.test', '/slow', 2],
    ['next.live.test', '/', 4],
    ['elsewhere.test', '/', 2],
  ];
  for (const [host, path, times] of sent) {
    for (let i = 0; i < times; i++) await request(proxy.port, host, { path });
  }
  const res = await scrape(metrics);
  t.equal(res.status, 200);
  t.match(res.type, /^text\/plain; version=0\.0\.4/);
  const check = await promtool(res.body);
  t.equal(check.code, 0, `promtool check metrics: ${check.output}`);

  const s = parseMetrics(res.body);
  t.equal(sample(s, 'bgproxy_requests_total', { role: 'live', color: 'blue', code: '200' }), 9);
  t.equal(sample(s, 'bgproxy_requests_total', { role: 'live', color: 'blue', code: '404' }), 3);
  t.equal(sample(s, 'bgproxy_requests_total', { role: 'next', color: 'green', code: '200' }), 4);
  t.equal(sample(s, 'bgproxy_requests_total', { role: 'other', color: 'none', code: '421' }), 2, 'refused before routing: role other, answered by bgproxy');
  const all = select(s, 'bgproxy_requests_total');
  t.equal(all.length, 4, 'no other series');
  t.equal(
    all.reduce((n, x) => n + x.value, 0),
    sent.reduce((n, [, , times]) => n + times, 0),
    'every request sent is counted once',
  );

  // The histogram: count per series, cumulative buckets ending at +Inf = count, the slow ones above 25 ms.
  const count = (role: string, color: string): number | undefined => sample(s, 'bgproxy_request_duration_seconds_count', { role, color });
  t.equal(count('live', 'blue'), 12);
  t.equal(count('next', 'green'), 4);
  t.equal(count('live', 'green'), 0, 'the four color series are there before any request');
  t.equal(count('other', 'none'), 2);
  const buckets = select(s, 'bgproxy_request_duration_seconds_bucket', { role: 'live', color: 'blue' });
  t.equal(buckets.at(-1)?.labels.le, '+Inf');
  t.equal(buckets.at(-1)?.value, 12);
  t.ok(
    buckets.every((b, i) => i === 0 || b.value >= buckets[i - 1]!.value),
    'cumulative',
  );
  t.ok(sample(s, 'bgproxy_request_duration_seconds_bucket', { role: 'live', color: 'blue', le: '0.025' })! <= 10, 'the two 30 ms requests are above 25 ms');
  t.ok(sample(s, 'bgproxy_request_duration_seconds_sum', { role: 'live', color: 'blue' })! >= 0.06, 'the sum holds at least the two 30 ms waits');

  t.equal(sample(s, 'bgproxy_inflight_requests', { color: 'blue' }), 0);
  t.equal(sample(s, 'bgproxy_live', { color: 'blue' }), 1);
  t.equal(sample(s, 'bgproxy_live', { color: 'green' }), 0);
  t.equal(sample(s, 'bgproxy_cutovers_total'), 0);
  t.equal(sample(s, 'bgproxy_upstream_errors_total', { color: 'blue', kind: 'refused' }), 0);
  t.same(select(s, 'bgproxy_app_up'), [], 'no app.start: bgproxy does not run the apps, so says nothing of them');
  t.ok(sample(s, 'process_resident_memory_bytes')! > 0, 'process metrics');
  t.ok(select(s, 'nodejs_eventloop_lag_seconds').length === 1, 'event-loop lag');
  t.match(res.body, /^# TYPE nodejs_gc_duration_seconds histogram$/m, 'GC (its series appear after the first collection)');

  // The next scrape sees no request of its own: the metrics listener is not the proxy.
  const again = parseMetrics((await scrape(metrics)).body);
  t.equal(
    select(again, 'bgproxy_requests_total').reduce((n, x) => n + x.value, 0),
    sent.reduce((n, [, , times]) => n + times, 0),
  );
});

t.test('a cutover moves bgproxy_live and the counters; a rollback too', async (t) => {
  const { proxy, metrics } = await setup(t);
  await request(proxy.port, 'live.test');
  const cut = await proxy.bg.cutover();
  t.equal(cut.live, 'green');
  let s = parseMetrics((await scrape(metrics)).body);
  t.equal(sample(s, 'bgproxy_live', { color: 'green' }), 1);
  t.equal(sample(s, 'bgproxy_live', { color: 'blue' }), 0);
  t.equal(sample(s, 'bgproxy_cutovers_total'), 1);
  t.equal(sample(s, 'bgproxy_rollbacks_total'), 0);
  const at = sample(s, 'bgproxy_last_cutover_timestamp_seconds')!;
  t.ok(Math.abs(at - Date.now() / 1000) < 120, 'when the switch happened');
  t.equal(sample(s, 'bgproxy_drain_seconds'), cut.drainMs / 1000);
  t.equal(sample(s, 'bgproxy_drain_cut_off_requests'), 0);

  await request(proxy.port, 'live.test');
  s = parseMetrics((await scrape(metrics)).body);
  t.equal(sample(s, 'bgproxy_requests_total', { role: 'live', color: 'green', code: '200' }), 1, 'live requests now counted on green');
  t.equal(sample(s, 'bgproxy_requests_total', { role: 'live', color: 'blue', code: '200' }), 1);

  await proxy.bg.rollback();
  s = parseMetrics((await scrape(metrics)).body);
  t.equal(sample(s, 'bgproxy_live', { color: 'blue' }), 1);
  t.equal(sample(s, 'bgproxy_cutovers_total'), 2, 'a rollback is a switch too');
  t.equal(sample(s, 'bgproxy_rollbacks_total'), 1);
});

t.test('upstream errors by kind; pause counts; the listener serves only /metrics', async (t) => {
  const { proxy, green, metrics } = await setup(t);
  await green.close();
  const r = await request(proxy.port, 'next.live.test');
  t.equal(r.status, 502);
  let s = parseMetrics((await scrape(metrics)).body);
  t.equal(sample(s, 'bgproxy_upstream_errors_total', { color: 'green', kind: 'refused' }), 1);
  t.equal(sample(s, 'bgproxy_requests_total', { role: 'next', color: 'green', code: '502' }), 1);

  await proxy.bg.pause(30_000);
  const held = [request(proxy.port, 'live.test'), request(proxy.port, 'live.test')];
  for (let i = 0; i < 200; i++) {
    s = parseMetrics((await scrape(metrics)).body);
    if (sample(s, 'bgproxy_paused_requests') === 2) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  t.equal(sample(s, 'bgproxy_paused'), 1);
  t.equal(sample(s, 'bgproxy_paused_requests'), 2, 'both requests are held');
  proxy.bg.resume();
  t.same((await Promise.all(held)).map((x) => x.status), [200, 200]);
  s = parseMetrics((await scrape(metrics)).body);
  t.equal(sample(s, 'bgproxy_paused'), 0);
  t.equal(sample(s, 'bgproxy_paused_requests'), 0);
  t.equal(sample(s, 'bgproxy_paused_requests_total'), 2);

  t.equal((await scrape(metrics, '/')).status, 404);
  t.equal((await scrape(metrics, '/metrics', 'POST')).status, 405);
  const head = await scrape(metrics, '/metrics', 'HEAD');
  t.equal(head.status, 200);
  t.equal(head.body, '');
  const pub = await request(proxy.port, 'live.test', { path: '/metrics' });
  t.equal(pub.body, 'blue\n', 'the public port proxies /metrics to the app like any path');
});

t.test('the expiry of the certificate served for each TLS host', async (t) => {
  const ca = makeCa(t);
  const shop = issueCert(ca, 'shop', ['live.test', 'next.live.test'], 1);
  const wild = issueCert(ca, 'wild', ['*.api.test'], 2);
  const blue = await startBackend(t, app('blue'));
  const green = await startBackend(t, app('green'));
  const proxy = await startProxy(t, {
    blue,
    green,
    settings: { metrics: { listen: '127.0.0.1:0' }, tls: { listen: '127.0.0.1:0', redirectHttp: false, certificates: [shop, wild] } },
  });
  const s = parseMetrics((await scrape(proxy.metricsListen!)).body);
  const expiry = (file: string): number => Math.floor(new Date(new X509Certificate(readFileSync(file)).validTo).getTime() / 1000);
  const series = select(s, 'bgproxy_tls_certificate_expiry_timestamp_seconds');
  t.same(
    series.map((x) => [x.labels.host, x.value]).sort(),
    [
      ['*.api.test', expiry(wild.cert)],
      ['live.test', expiry(shop.cert)],
      ['next.live.test', expiry(shop.cert)],
    ],
  );
  t.ok(series.every((x) => x.value > Date.now() / 1000), 'in the future');
});
