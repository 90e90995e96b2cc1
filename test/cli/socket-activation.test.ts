// Restarting serve under systemd socket activation: the listening socket belongs to the
// .socket unit (here a stand-in, test/fixtures/socket-holder.py), so while one serve stops
// and the next starts, new connections wait in its backlog instead of being refused, and
// requests wait for the restarted apps (holdMs) instead of failing.
import { copyFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { activatedListenFds } from '../../src/serve.js';
import { FIXTURE_APP } from '../helpers/apps.js';
import { request, startLoad } from '../helpers/nginx.js';
import { freePort } from '../helpers/ports.js';
import { makeRoot } from '../helpers/root.js';
import { startSocketHolder } from '../helpers/socket-holder.js';

t.test('activatedListenFds: fd 3 when systemd passed one socket to this pid; the variables never reach the apps', async (t) => {
  const env = (vars: Record<string, string>): NodeJS.ProcessEnv => ({ PATH: '/bin', ...vars });
  const ours = env({ LISTEN_FDS: '1', LISTEN_PID: '4242', LISTEN_FDNAMES: 'bgproxy-shop.socket' });
  t.same(activatedListenFds(ours, 4242), { http: 3, https: null });
  t.same(ours, { PATH: '/bin' }, 'LISTEN_* removed');
  const theirs = env({ LISTEN_FDS: '1', LISTEN_PID: '1' });
  t.equal(activatedListenFds(theirs, 4242), null, 'meant for another process');
  t.same(theirs, { PATH: '/bin' });
  t.equal(activatedListenFds(env({}), 4242), null, 'not socket-activated');
  t.throws(() => activatedListenFds(env({ LISTEN_FDS: '2', LISTEN_PID: '4242' }), 4242), { code: 'BG_USAGE', message: /systemd passed 2 sockets/ });
});

t.test('serve restarted on a socket it does not own: no connection refused, no request failed', async (t) => {
  const root = makeRoot(t, {
    hosts: { live: ['shop.test'], next: ['next.shop.test'] },
    colors: { blue: { port: await freePort() }, green: { port: await freePort() } },
    holdMs: 10_000,
    drainTimeoutMs: 5000,
    app: {
      start: 'exec node app.js',
      env: { NODE_OPTIONS: '' },
      health: { path: '/health', intervalMs: 200, timeoutMs: 1000 },
      stopTimeoutMs: 3000,
    },
  });
  for (const c of ['blue', 'green']) copyFileSync(FIXTURE_APP, path.join(root, c, 'repo', 'app.js'));

  const { line, restart } = startSocketHolder(t, root);

  const port = Number((await line(/^port (\d+)$/))[1]);
  const listening = JSON.parse((await line(/^\{.*"event":"listening".*$/))[0]) as { listen: string; activated?: boolean };
  t.equal(listening.listen, `127.0.0.1:${port}`, 'serve listens on the socket it was given');
  t.equal(listening.activated, true);
  const first = await request({ port, host: 'shop.test', path: '/', timeoutMs: 15_000 });
  t.equal(first.body.trim(), 'blue v0', 'the app answers through the activated socket');
  const pidBefore = readFileSync(path.join(root, 'blue', 'etc', 'app.pid'), 'utf8');

  // A request may wait out the whole restart (serve stops, starts, the apps restart): on a
  // slow machine under this load that took over 5 s, so each request gets 15 s (holdMs is 10).
  const fresh = startLoad({ port, host: 'shop.test', concurrency: 10, keepAlive: false, maxMs: 30_000, paceMs: 5, timeoutMs: 15_000 });
  const kept = startLoad({ port, host: 'shop.test', concurrency: 10, keepAlive: true, maxMs: 30_000, paceMs: 5, timeoutMs: 15_000 });
  await new Promise((r) => setTimeout(r, 1000));
  const restartAt = performance.now();
  restart();
  t.equal((await line(/^exited (\d+)$/))[1], '0', 'the old serve stopped cleanly');
  await line(/"event":"listening"/, 2);
  // Load goes on until the restarted serve has answered for a while.
  let answered = false;
  while (!answered) {
    const r = await request({ port, host: 'shop.test', path: '/', timeoutMs: 15_000 });
    answered = r.status === 200;
  }
  const gapMs = Math.round(performance.now() - restartAt);
  await new Promise((r) => setTimeout(r, 1000));
  const [a, b] = [await fresh.stop(), await kept.stop()];
  t.comment(`restart to first answer ${gapMs} ms; new connections: ${a.total} requests, failed ${a.failed} ${JSON.stringify(a.errors)}; keep-alive: ${b.total} requests, failed ${b.failed} ${JSON.stringify(b.errors)}`);
  t.equal(a.failed, 0, 'no request on a new connection failed (none refused)');
  t.equal(b.failed, 0, 'no request on a keep-alive connection failed');
  t.ok(a.total > 50 && b.total > 50, 'traffic on both kinds of connection');
  t.not(readFileSync(path.join(root, 'blue', 'etc', 'app.pid'), 'utf8'), pidBefore, 'the apps restarted with serve');
});
