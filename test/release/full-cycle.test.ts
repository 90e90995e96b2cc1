// The release cycle under load: deploy v1, cutover, deploy v2, cutover, deploy v3,
// cutover, rollback, with 50 keep-alive clients hammering the live host throughout.
import t from 'tap';
import { waitFor } from '../helpers/apps.js';
import { startLoad } from '../helpers/load.js';
import { startReleaseSetup } from '../helpers/release.js';

t.test('full cycle under 50 keep-alive clients: zero errors, versions v1 -> v2 -> v3 -> v2', async (t) => {
  const { proxy: p, commit } = await startReleaseSetup(t);
  commit('v1');
  await p.bg.deploy();
  await p.bg.cutover();
  const load = startLoad({ port: p.port, host: 'live.test', clients: 50, maxMs: 90_000 });
  const seen = (body: string) => waitFor(() => load.stats.bodies.slice(-20).every((b) => b === body), 15_000, body);
  await seen('green v1');
  const steps: string[] = [];
  for (const v of ['v2', 'v3']) {
    commit(v);
    const d = await p.bg.deploy();
    steps.push(`deploy ${v} into ${d.color} ${d.totalMs} ms`);
    const c = await p.bg.cutover();
    steps.push(`cutover to ${c.live}: drained ${c.inflightAtSwitch} in ${c.drainMs} ms`);
    await seen(`${c.live} ${v}`);
  }
  const r = await p.bg.rollback();
  steps.push(`rollback to ${r.live}: drained ${r.inflightAtSwitch} in ${r.drainMs} ms`);
  await seen('blue v2');
  const stats = await load.stop();
  const order: string[] = [];
  for (const b of stats.bodies) if (order.at(-1) !== b) order.push(b);
  t.comment(steps.join('; '));
  t.comment(`requests=${stats.requests} errors=${stats.errors.length} non2xx=${stats.non2xx.length} ${[...stats.counts].map(([k, v]) => `${k}=${v}`).join(' ')}`);
  t.same(stats.errors, [], 'no connection errors or resets');
  t.same(stats.non2xx, [], 'no 5xx or other non-2xx');
  t.same([...stats.counts.keys()], ['green v1', 'blue v2', 'green v3'], 'versions appeared in release order');
  t.equal(order.at(-1), 'blue v2', 'rolled back to v2');
  t.ok(order.length >= 4, `at least 4 transitions (${order.length})`);
});
