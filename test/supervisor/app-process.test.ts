// AppProcess lifecycle: start, readiness, health while running, stop, restart.
import { existsSync, readFileSync } from 'node:fs';
import t from 'tap';
import { execIfSimple } from '../../src/supervisor/spawn.js';
import { alive, get, startable, waitState } from './setup.js';

t.test('starts, becomes running, writes its pid file, stops cleanly', async (t) => {
  const { app, port, pidFile } = await startable(t, { env: { APP_VERSION: 'v7' } });
  const states: string[] = [];
  app.on('state', (s) => states.push(s));
  await app.start();
  t.equal(app.state, 'running');
  t.equal(app.healthy, true);
  const pid = app.pid;
  t.type(pid, 'number');
  t.equal(readFileSync(pidFile, 'utf8').trim(), String(pid));
  const res = await get(port, '/');
  t.equal(res.body, 'blue v7\n');
  t.equal(res.headers['x-color'], 'blue');
  const snap = app.snapshot();
  t.match(snap, { state: 'running', pid, restarts: 0, lastExit: null, healthy: true, reason: null });
  t.ok((snap.uptimeMs ?? -1) >= 0);
  await app.start(); // already running: a no-op
  t.equal(app.pid, pid);

  t.same(await app.stop(), { killed: false });
  t.equal(app.state, 'stopped');
  t.equal(app.pid, null);
  t.notOk(existsSync(pidFile), 'pid file removed');
  t.notOk(alive(pid!), 'process gone');
  t.match(app.lastExit, { signal: /SIGTERM|null/ });
  t.same(states, ['starting', 'running', 'stopping', 'stopped']);
});

t.test('not healthy within startTimeoutMs: BG_PROCESS, state unhealthy, then recovers', async (t) => {
  const { app, port } = await startable(t, { env: { FIXTURE_UNHEALTHY: '1' }, startTimeoutMs: 2000 });
  // On a loaded machine the app may not even listen within the timeout: either reason will do.
  await t.rejects(app.start(), {
    code: 'BG_PROCESS',
    message: /did not become healthy within 2000 ms: (HTTP 500|connection refused)/,
  });
  t.equal(app.state, 'unhealthy');
  t.equal(app.healthy, false);
  t.match(app.reason, /not healthy within 2000 ms/);
  t.type(app.pid, 'number', 'the process keeps running');
  await retry(() => get(port, '/health/set?status=200'));
  await waitState(app, 'running');
  t.equal(app.reason, null);
});

/** Calls fn until it resolves (the app may still be starting). */
async function retry<T>(fn: () => Promise<T>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

t.test('start timeout when nothing listens in time', async (t) => {
  const { app } = await startable(t, { env: { FIXTURE_START_DELAY_MS: '30000' }, startTimeoutMs: 500 });
  const err = await app.start().catch((e: unknown) => e);
  t.match(err, { code: 'BG_PROCESS', message: /within 500 ms: connection refused/ });
  t.equal(app.state, 'unhealthy');
});

t.test('running -> unhealthy after unhealthyAfter failed checks, and back', async (t) => {
  const { app, port } = await startable(t);
  await app.start();
  await get(port, '/health/set?status=503');
  await waitState(app, 'unhealthy');
  t.match(app.reason, /2 failed health checks: HTTP 503/);
  t.type(app.pid, 'number', 'an unhealthy app is not restarted');
  await get(port, '/health/set?status=204');
  await waitState(app, 'running');
  t.equal(app.restarts, 0);
});

t.test('stop while in backoff, restart, stop while starting', async (t) => {
  const { app } = await startable(t, {
    env: { FIXTURE_EXIT_AT_START: '1' },
    backoff: { initialMs: 5_000, maxMs: 5_000, resetAfterMs: 60_000 },
  });
  await t.rejects(app.start(), { code: 'BG_PROCESS' });
  await waitState(app, 'backoff');
  t.same(await app.stop(), { killed: false });
  t.equal(app.state, 'stopped');

  const slow = await startable(t, { env: { FIXTURE_START_DELAY_MS: '30000' } });
  const starting = slow.app.start();
  await waitState(slow.app, 'starting');
  await new Promise((r) => setTimeout(r, 200));
  const stopped = slow.app.stop();
  await t.rejects(starting, { code: 'BG_PROCESS', message: /stopped before it became healthy/ });
  await stopped;
  t.equal(slow.app.state, 'stopped');
});

t.test('restart() gives a new pid; a missing cwd fails without retrying', async (t) => {
  const { app } = await startable(t);
  await app.start();
  const pid = app.pid;
  await app.restart();
  t.equal(app.state, 'running');
  t.not(app.pid, pid);
  t.equal(app.restarts, 0, 'a requested restart is not a crash');

  const broken = await startable(t, { cwd: '/nonexistent/dir' });
  await t.rejects(broken.app.start(), { code: 'BG_PROCESS', message: /cannot start/ });
  t.equal(broken.app.state, 'failed');
});

t.test('execIfSimple execs plain commands only', async (t) => {
  t.equal(execIfSimple('node server.js'), 'exec node server.js');
  t.equal(execIfSimple('  $BG_ENV/bin/python -m gunicorn -b 127.0.0.1:$PORT app:app'), 'exec $BG_ENV/bin/python -m gunicorn -b 127.0.0.1:$PORT app:app');
  for (const c of [
    'cd app && node server.js',
    'node a.js; node b.js',
    'node server.js > out.log',
    "node -e 'x()'",
    'PORT=1 node server.js',
    'exec node server.js',
    'node server.js &',
    '$(which node) server.js',
    'a | b',
  ]) {
    t.equal(execIfSimple(c), c, c);
  }
});
