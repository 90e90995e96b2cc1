// The headline claim over TLS: 50 keep-alive HTTPS clients and 10 cutovers, nothing fails.
import t from 'tap';
import { colorHandler, startBackend } from '../helpers/backend.js';
import { startLoad, tenCutovers } from '../helpers/load.js';
import { startProxy } from '../helpers/proxy.js';
import { issueCert, makeCa } from '../helpers/tls.js';

t.test('50 keep-alive HTTPS clients see no error across 10 cutovers', async (t) => {
  const ca = makeCa(t);
  const cert = issueCert(ca, 'live', ['live.test']);
  const blue = await startBackend(t, colorHandler('blue'));
  const green = await startBackend(t, colorHandler('green'));
  const p = await startProxy(t, { blue, green, settings: { tls: { listen: '127.0.0.1:0', certificates: [cert] } } });
  const port = Number(p.tlsListen!.split(':').pop());
  const load = startLoad({ port, host: 'live.test', clients: 50, maxMs: 30_000, tls: { ca: ca.pem } });
  await new Promise((r) => setTimeout(r, 500));
  const started = performance.now();
  const switchesSeen = await tenCutovers(t, p.bg, load);
  const ms = performance.now() - started;
  const stats = await load.stop();
  t.comment(
    `https: requests=${stats.requests} (${Math.round((stats.requests * 1000) / ms)}/s) errors=${stats.errors.length} non2xx=${stats.non2xx.length} blue=${stats.counts.get('blue')} green=${stats.counts.get('green')}`,
  );
  t.same(stats.errors, [], 'no connection errors or resets');
  t.same(stats.non2xx, [], 'no non-2xx responses');
  t.ok(stats.requests > 500, `enough traffic (${stats.requests})`);
  t.equal(switchesSeen, 10, 'every cutover moved the traffic');
  t.same([...stats.counts.keys()].sort(), ['blue', 'green'], 'every response came from one of the two colors');
});
