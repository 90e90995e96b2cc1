// The headline claim over HTTP/2: h2 sessions multiplexing streams and HTTP/1.1 clients on the
// same TLS listener at once, 10 cutovers, nothing fails; sessions stay open across them.
import t from 'tap';
import { colorHandler, startBackend } from '../helpers/backend.js';
import { h2Connect, h2Request, startH2Load } from '../helpers/h2.js';
import { startLoad, tenCutovers } from '../helpers/load.js';
import { startProxy } from '../helpers/proxy.js';
import { issueCert, makeCa } from '../helpers/tls.js';

t.test('h2 streams and HTTPS/1.1 clients on one listener see no error across 10 cutovers', async (t) => {
  const ca = makeCa(t);
  const cert = issueCert(ca, 'live', ['live.test']);
  const blue = await startBackend(t, colorHandler('blue'));
  const green = await startBackend(t, colorHandler('green'));
  // The product's default drain time: on a loaded machine a stream's answer can take seconds.
  const p = await startProxy(t, { blue, green, settings: { drainTimeoutMs: 30_000, tls: { listen: '127.0.0.1:0', certificates: [cert] } } });
  const port = Number(p.tlsListen!.split(':').pop());
  const h2 = startH2Load({ port, ca: ca.pem, host: 'live.test', sessions: 6, streams: 5, maxMs: 60_000 });
  const h1 = startLoad({ port, host: 'live.test', clients: 15, maxMs: 60_000, tls: { ca: ca.pem } });
  await new Promise((r) => setTimeout(r, 500));
  const switchesSeen = await tenCutovers(t, p.bg, h2);
  const h2Stats = await h2.stop();
  const h1Stats = await h1.stop();
  t.comment(`h2: streams=${h2Stats.requests} errors=${h2Stats.errors.length} blue=${h2Stats.counts.get('blue')} green=${h2Stats.counts.get('green')}`);
  t.comment(`https/1.1: requests=${h1Stats.requests} errors=${h1Stats.errors.length}`);
  t.same(h2Stats.errors, [], 'no h2 stream or session failed');
  t.same(h2Stats.non2xx, [], 'no non-2xx over h2');
  t.same(h1Stats.errors, [], 'no HTTP/1.1 connection errors or resets');
  t.same(h1Stats.non2xx, [], 'no non-2xx over HTTP/1.1');
  t.ok(h2Stats.requests > 500, `enough h2 traffic (${h2Stats.requests})`);
  t.ok(h1Stats.requests > 100, `enough HTTP/1.1 traffic (${h1Stats.requests})`);
  t.equal(switchesSeen, 10, 'every cutover moved the h2 traffic');
  t.same([...h2Stats.counts.keys()].sort(), ['blue', 'green'], 'every h2 response came from one of the two colors');
  t.same([...h1Stats.counts.keys()].sort(), ['blue', 'green'], 'every HTTP/1.1 response came from one of the two colors');
});

t.test('a stream in flight at cutover finishes on the old color; the next stream on the same session goes to the new live', async (t) => {
  const ca = makeCa(t);
  const cert = issueCert(ca, 'live', ['live.test']);
  const blue = await startBackend(t, colorHandler('blue'));
  const green = await startBackend(t, colorHandler('green'));
  const p = await startProxy(t, { blue, green, settings: { tls: { listen: '127.0.0.1:0', certificates: [cert] } } });
  const port = Number(p.tlsListen!.split(':').pop());
  const s = h2Connect(t, port, ca.pem);
  t.equal((await h2Request(s, { ':path': '/', ':authority': 'live.test' })).body, 'blue\n');
  const slow = h2Request(s, { ':path': '/slow?ms=1000', ':authority': 'live.test' });
  while (blue.seen.length < 2) await new Promise((r) => setTimeout(r, 10));
  const cut = p.bg.cutover();
  // The switch happens before the drain: wait for it, not for the cutover to return.
  while (p.bg.roles.live !== 'green') await new Promise((r) => setTimeout(r, 10));
  const after = await h2Request(s, { ':path': '/', ':authority': 'live.test' });
  t.equal(after.body, 'green\n', 'a new stream on the same session went to the new live');
  t.equal((await slow).body, 'blue\n', 'the stream in flight finished on blue');
  t.equal((await cut).cutOff, 0, 'the cutover drained it');
  t.notOk(s.destroyed || s.closed, 'the session stayed open');
});
