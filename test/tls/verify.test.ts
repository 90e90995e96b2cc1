// bgproxy verify against the TLS listener: --url https://… with --ca for a private CA,
// the SNI name taken from --host so it agrees with the Host header. (Websockets over TLS:
// own-certs.test.ts; the test backend's echo is not the verbatim one verify's probe expects.)
import path from 'node:path';
import t from 'tap';
import { colorHandler, startBackend } from '../helpers/backend.js';
import { cli } from '../helpers/cli.js';
import { startProxy } from '../helpers/proxy.js';
import { issueCert, makeCa } from '../helpers/tls.js';

const NO_LOADERS = { NODE_OPTIONS: '' };

t.test('verify --url https://… --ca: a cutover and a rollback over TLS, no failed request', async (t) => {
  const ca = makeCa(t);
  const cert = issueCert(ca, 'live', ['live.test']);
  const blue = await startBackend(t, colorHandler('blue'));
  const green = await startBackend(t, colorHandler('green'));
  const p = await startProxy(t, { blue, green, settings: { tls: { listen: '127.0.0.1:0', certificates: [cert] } } });
  const url = `https://127.0.0.1:${p.tlsListen!.split(':').pop()}/`;
  const r = await cli(['verify', '--url', url, '--host', 'live.test', '--ca', ca.cert, '--root', p.root, '--duration', '3', '--connections', '10', '--cutover', '--no-websocket'], {
    env: NO_LOADERS,
  });
  t.equal(r.code, 0, r.stderr || r.stdout);
  t.match(r.stdout, /^Failed requests:\s+0$/m);
  t.match(r.stdout, /s cutover: live: green \(was blue\)/);
  t.match(r.stdout, /Answered by\s+blue\s+\d+\s+green\s+\d+/, 'both colors answered');
  const untrusted = await cli(['verify', '--url', url, '--host', 'live.test', '--duration', '0.5', '--connections', '2', '--no-websocket'], { env: NO_LOADERS });
  t.equal(untrusted.code, 1, 'without --ca the certificate is not trusted: every request fails');
  const bad = await cli(['verify', '--url', url, '--ca', path.join(ca.dir, 'nope.pem')], { env: NO_LOADERS });
  t.equal(bad.code, 2);
  t.match(bad.stderr, /^bgproxy: --ca: cannot read .*nope\.pem \(ENOENT\)$/);
});
