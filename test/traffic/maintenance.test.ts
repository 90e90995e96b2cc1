// Maintenance under load: while on, the live hosts answer only 503 + Retry-After (no
// connection errors), next keeps working; kept across a restart of serve.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { loadConfig } from '../../src/config.js';
import { readHistory } from '../../src/deploy/history.js';
import { silentLogger } from '../../src/log.js';
import { startServer } from '../../src/serve.js';
import { colorHandler, startBackend } from '../helpers/backend.js';
import { request } from '../helpers/http.js';
import { startLoad } from '../helpers/load.js';
import { startProxy } from '../helpers/proxy.js';

t.test('maintenance on/off under 20 keep-alive clients: only 503 + Retry-After while on, 0 errors', async (t) => {
  const blue = await startBackend(t, colorHandler('blue'));
  const green = await startBackend(t, colorHandler('green'));
  const p = await startProxy(t, { blue, green });
  const window = { on: Number.POSITIVE_INFINITY, off: Number.POSITIVE_INFINITY };
  const during: Array<{ status: number; retryAfter: unknown; body: string }> = [];
  const after: number[] = [];
  const load = startLoad({
    port: p.port,
    host: 'live.test',
    clients: 20,
    maxMs: 10_000,
    onResponse: (r) => {
      if (r.startedAt >= window.on && r.endedAt <= window.off) during.push({ status: r.status, retryAfter: r.headers['retry-after'], body: r.body });
      if (r.startedAt >= window.off) after.push(r.status);
    },
  });
  t.teardown(() => load.stop());
  await new Promise((r) => setTimeout(r, 400));
  await p.bg.maintenance(true, 90);
  window.on = performance.now();
  await new Promise((r) => setTimeout(r, 800));
  const next = await request(p.port, 'next.live.test');
  t.equal(next.status, 200, 'the next host still works during maintenance');
  t.equal(next.body, 'green\n');
  const status = await p.bg.status();
  t.match(status.traffic?.maintenance, { retryAfterS: 90, page: 'built-in' });
  window.off = performance.now();
  await p.bg.maintenance(false);
  await new Promise((r) => setTimeout(r, 400));
  const stats = await load.stop();

  t.same(stats.errors, [], 'no connection errors');
  t.ok(during.length > 50, `${during.length} responses while on`);
  t.same([...new Set(during.map((d) => d.status))], [503], 'only 503 while on');
  t.same([...new Set(during.map((d) => d.retryAfter))], ['90'], 'each with Retry-After');
  t.match(during[0]?.body, /Down for maintenance/);
  t.ok(after.length > 50, `${after.length} responses after off`);
  t.same([...new Set(after)], [200], 'only 200 after off');
  t.same([...new Set(stats.non2xx)], [503], 'nothing but 503 was ever not 2xx');
  t.comment(`${stats.requests} requests, ${during.length} during maintenance, ${after.length} after`);
});

t.test('maintenance survives a restart, serves ROOT/maintenance.html for GET and HEAD, and is in history', async (t) => {
  const blue = await startBackend(t, colorHandler('blue'));
  const green = await startBackend(t, colorHandler('green'));
  const p = await startProxy(t, { blue, green });
  writeFileSync(path.join(p.root, 'maintenance.html'), '<h1>back at 3</h1>\n');
  await p.bg.maintenance(true, 120);
  t.ok(existsSync(path.join(p.root, 'traffic.json')));
  await p.stop();

  const again = await startServer({ config: loadConfig(p.root), logger: silentLogger(), accessLog: false });
  t.teardown(() => again.stop());
  const port = Number(again.listen!.split(':').pop());
  const get = await request(port, 'live.test');
  t.equal(get.status, 503);
  t.equal(get.body, '<h1>back at 3</h1>\n');
  t.equal(get.headers['retry-after'], '120');
  t.match(get.headers['content-type'], /^text\/html/);
  const head = await request(port, 'live.test', { method: 'HEAD' });
  t.equal(head.status, 503);
  t.equal(head.body, '');
  t.equal(head.headers['retry-after'], '120');
  const post = await request(port, 'live.test', { method: 'POST', body: 'x'.repeat(1000) });
  t.equal(post.status, 503, 'a request with a body too');
  t.equal(blue.seen.length, 0, 'nothing reached the live app');
  t.equal((await request(port, 'next.live.test')).status, 200);

  await again.bg.maintenance(false);
  t.equal((await request(port, 'live.test')).status, 200);
  t.same(JSON.parse(readFileSync(path.join(p.root, 'traffic.json'), 'utf8')).maintenance, null);
  const actions = (await readHistory(p.root)).map((e) => e.action);
  t.same(actions, ['maintenance-on', 'maintenance-off']);
});
