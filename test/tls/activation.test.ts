// systemd socket activation with two sockets told apart by FileDescriptorName= (http,
// https): serve takes both, and a restart of serve refuses no HTTPS connection.
import t from 'tap';
import { activatedListenFds } from '../../src/serve.js';
import { colorHandler, startBackend } from '../helpers/backend.js';
import { request } from '../helpers/http.js';
import { makeRoot } from '../helpers/root.js';
import { startSocketHolder } from '../helpers/socket-holder.js';
import { httpsRequest, issueCert, makeCa } from '../helpers/tls.js';

t.test('activatedListenFds: one unnamed socket is http; two must be named http and https', async (t) => {
  const env = (vars: Record<string, string>): NodeJS.ProcessEnv => ({ PATH: '/bin', ...vars });
  t.same(activatedListenFds(env({ LISTEN_FDS: '1', LISTEN_PID: '7', LISTEN_FDNAMES: 'bgproxy-shop.socket' }), 7), { http: 3, https: null });
  t.same(activatedListenFds(env({ LISTEN_FDS: '1', LISTEN_PID: '7', LISTEN_FDNAMES: 'https' }), 7), { http: null, https: 3 });
  const two = env({ LISTEN_FDS: '2', LISTEN_PID: '7', LISTEN_FDNAMES: 'https:http' });
  t.same(activatedListenFds(two, 7), { http: 4, https: 3 }, 'by name, in either order');
  t.same(two, { PATH: '/bin' }, 'LISTEN_* removed');
  t.throws(() => activatedListenFds(env({ LISTEN_FDS: '2', LISTEN_PID: '7', LISTEN_FDNAMES: 'shop.socket:shop.socket' }), 7), {
    code: 'BG_USAGE',
    message: /FileDescriptorName=http and FileDescriptorName=https/,
  });
  t.throws(() => activatedListenFds(env({ LISTEN_FDS: '3', LISTEN_PID: '7', LISTEN_FDNAMES: 'http:https:x' }), 7), { code: 'BG_USAGE' });
  t.equal(activatedListenFds(env({ LISTEN_FDS: '2', LISTEN_PID: '1' }), 7), null, 'meant for another process');
});

t.test('serve on two activated sockets; a restart refuses no HTTPS request', async (t) => {
  const ca = makeCa(t);
  const cert = issueCert(ca, 'shop', ['shop.test']);
  const blue = await startBackend(t, colorHandler('blue'));
  const green = await startBackend(t, colorHandler('green'));
  const root = makeRoot(t, {
    hosts: { live: ['shop.test'], next: [] },
    colors: { blue: { port: blue.port }, green: { port: green.port } },
    holdMs: 5000,
    drainTimeoutMs: 5000,
    tls: { listen: '127.0.0.1:1', certificates: [cert] },
  });
  const { line, restart } = startSocketHolder(t, root, { tls: true });
  const port = Number((await line(/^port (\d+)$/))[1]);
  const tlsPort = Number((await line(/^tlsport (\d+)$/))[1]);
  const listening = JSON.parse((await line(/^\{.*"event":"listening".*$/))[0]) as { listen: string; tlsListen: string; activated?: boolean };
  t.equal(listening.listen, `127.0.0.1:${port}`);
  t.equal(listening.tlsListen, `127.0.0.1:${tlsPort}`, 'the https socket, not tls.listen');
  t.equal((await httpsRequest({ port: tlsPort, host: 'shop.test', ca: ca.pem })).body, 'blue\n');
  t.equal((await request(port, 'shop.test')).status, 308, 'http redirects to https');

  let running = true;
  let ok = 0;
  const failed: string[] = [];
  const loop = (async () => {
    while (running) {
      await httpsRequest({ port: tlsPort, host: 'shop.test', ca: ca.pem }).then(
        (r) => (r.status === 200 ? ok++ : failed.push(String(r.status))),
        (e: NodeJS.ErrnoException) => failed.push(e.code ?? e.message),
      );
    }
  })();
  await new Promise((r) => setTimeout(r, 300));
  restart();
  await line(/^exited (\d+)$/);
  await line(/"event":"listening"/, 2);
  const before = ok;
  while (ok < before + 20) await new Promise((r) => setTimeout(r, 20));
  running = false;
  await loop;
  t.same(failed, [], `no HTTPS request failed across the restart (${ok} answered)`);
});
