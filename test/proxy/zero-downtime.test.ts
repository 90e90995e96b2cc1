// The headline claim, measured: 50 keep-alive clients and 10 cutovers, nothing fails.
import t from 'tap';
import { colorHandler, startBackend } from '../helpers/backend.js';
import { startLoad } from '../helpers/load.js';
import { startProxy } from '../helpers/proxy.js';

t.test('50 keep-alive clients see no error across 10 cutovers', async (t) => {
  const blue = await startBackend(t, colorHandler('blue'));
  const green = await startBackend(t, colorHandler('green'));
  const p = await startProxy(t, { blue, green });
  const load = startLoad({ port: p.port, host: 'live.test', clients: 50, maxMs: 20_000 });
  const wait = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
  await wait(300);
  let cutovers = 0;
  let switchesSeen = 0;
  for (let i = 0; i < 10; i++) {
    const r = await p.bg.cutover();
    cutovers++;
    t.equal(r.cutOff, 0, `cutover ${i + 1} drained fully`);
    // Wait until traffic has actually flowed on the new color before the next switch.
    const seenAfter = load.stats.bodies.length;
    const until = Date.now() + 5000;
    while (!load.stats.bodies.slice(seenAfter).includes(r.live) && Date.now() < until) await wait(10);
    if (load.stats.bodies.slice(seenAfter).includes(r.live)) switchesSeen++;
    await wait(150);
  }
  const stats = await load.stop();
  t.comment(`requests=${stats.requests} errors=${stats.errors.length} non2xx=${stats.non2xx.length} cutovers=${cutovers} blue=${stats.counts.get('blue')} green=${stats.counts.get('green')}`);
  t.same(stats.errors, [], 'no connection errors or resets');
  t.same(stats.non2xx, [], 'no non-2xx responses');
  t.ok(stats.requests > 500, `enough traffic (${stats.requests})`);
  t.equal(switchesSeen, 10, 'every cutover moved the traffic');
  t.same([...stats.counts.keys()].sort(), ['blue', 'green'], 'every response came from one of the two colors');
});
