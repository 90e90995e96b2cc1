// Fleet releases over real OpenSSH (test/helpers/fleet-release.ts): two releases pushed,
// deployed and cut over on three servers while every front carries load.
import t from 'tap';
import { startReleasedFleet } from '../helpers/fleet-release.js';
import { startLoad } from '../helpers/load.js';

t.test('push + deploy + cutover of two releases under load: no failed request on any front', async (t) => {
  const f = await startReleasedFleet(t);
  const loads = f.servers.map((s) => startLoad({ port: s.serve.port, host: 'shop.test', clients: 4, maxMs: 60_000, pauseMs: 5 }));
  const spreads: number[] = [];
  const took: number[] = [];
  for (const version of ['v2', 'v3']) {
    const sha = f.commit(version);
    const p = await f.fleet(['push']);
    t.equal(p.code, 0, p.stderr);
    const t0 = performance.now();
    const d = await f.fleet(['deploy', '--cutover']);
    took.push(Math.round(performance.now() - t0));
    t.equal(d.code, 0, d.stdout + d.stderr);
    t.match(d.stdout, `${sha.slice(0, 7)} is live`);
    const spread = /the switches were ([\d.]+) ms apart/.exec(d.stdout);
    t.ok(spread, 'the report says how far apart the switches were');
    spreads.push(Number(spread?.[1]));
  }
  const stats = await Promise.all(loads.map((l) => l.stop()));
  const requests = stats.reduce((n, s) => n + s.requests, 0);
  const errors = stats.flatMap((s) => s.errors);
  const non2xx = stats.flatMap((s) => s.non2xx);
  t.comment(`${requests} requests through 3 fronts, ${errors.length} errors, ${non2xx.length} non-2xx; switch spreads ${spreads.join(', ')} ms; fleet deploy --cutover ${took.join(', ')} ms`);
  t.same(errors, [], 'no request failed');
  t.same(non2xx, [], 'no 5xx or other non-2xx');
  for (const [i, s] of stats.entries()) {
    t.ok(s.requests > 50, `front ${i + 1} carried load (${s.requests})`);
    t.same([...s.counts.keys()].filter((b) => !['green v1', 'blue v2', 'green v3'].includes(b)), [], 'every answer came from a release');
  }
  t.same(await f.lives(), ['green v3', 'green v3', 'green v3']);
  for (const ms of spreads) t.ok(ms < 1000, `the switches were close together (${ms} ms)`);
});
