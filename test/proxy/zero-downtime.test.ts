// The headline claim, measured: 50 keep-alive clients and 10 cutovers, nothing fails.
import t from 'tap';
import { colorHandler, startBackend } from '../helpers/backend.js';
import { startLoad, tenCutovers } from '../helpers/load.js';
import { startProxy } from '../helpers/proxy.js';

t.test('50 keep-alive clients see no error across 10 cutovers', async (t) => {
  const blue = await startBackend(t, colorHandler('blue'));
  const green = await startBackend(t, colorHandler('green'));
  const p = await startProxy(t, { blue, green });
  const load = startLoad({ port: p.port, host: 'live.test', clients: 50, maxMs: 20_000 });
  await new Promise((r) => setTimeout(r, 300));
  const switchesSeen = await tenCutovers(t, p.bg, load);
  const stats = await load.stop();
  t.comment(`requests=${stats.requests} errors=${stats.errors.length} non2xx=${stats.non2xx.length} cutovers=10 blue=${stats.counts.get('blue')} green=${stats.counts.get('green')}`);
  t.same(stats.errors, [], 'no connection errors or resets');
  t.same(stats.non2xx, [], 'no non-2xx responses');
  t.ok(stats.requests > 500, `enough traffic (${stats.requests})`);
  t.equal(switchesSeen, 10, 'every cutover moved the traffic');
  t.same([...stats.counts.keys()].sort(), ['blue', 'green'], 'every response came from one of the two colors');
});
