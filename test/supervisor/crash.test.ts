// AppProcess after unexpected exits: backoff, restart, crash-loop pacing.

import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import t from 'tap';
import { BgError } from '../../src/errors.js';
import { get, startable } from './setup.js';

t.test('an app that exits at once backs off with growing delays, never runs', async (t) => {
  const { app } = await startable(t, {
    env: { FIXTURE_EXIT_AT_START: '1' },
    backoff: { initialMs: 50, maxMs: 400, resetAfterMs: 60_000 },
  });
  const delays: number[] = [];
  let ran = false;
  app.on('state', (s) => {
    if (s === 'running') ran = true;
  });
  const fifth = new Promise<void>((resolve) =>
    app.on('restarting', ({ inMs }) => {
      delays.push(inMs);
      if (delays.length === 5) resolve();
    }),
  );
  const err = await app.start().then(
    () => null,
    (e: unknown) => e,
  );
  t.ok(err instanceof BgError, 'start rejects');
  t.match(err, { code: 'BG_PROCESS', message: /exited with code 1 before it became healthy/ });
  t.match((err as BgError).detail, /FIXTURE_EXIT_AT_START/, 'detail holds the end of the log');
  await fifth;
  t.same(delays, [50, 100, 200, 400, 400]);
  t.ok(app.restarts >= 4, `restarts ${app.restarts}`);
  t.match(app.lastExit, { code: 1, signal: null });
  t.ok(['crashed', 'backoff', 'starting'].includes(app.state));
  t.notOk(ran, 'never running');
  await app.stop();
  t.equal(app.state, 'stopped');
  const restarts = app.restarts;
  await new Promise((r) => setTimeout(r, 600));
  t.equal(app.restarts, restarts, 'no restart after stop');
  t.equal(app.state, 'stopped');
});

t.test('kill -9 of the app: crashed, restarted, running again', async (t) => {
  const { app, port, pidFile } = await startable(t);
  await app.start();
  const pid = app.pid!;
  const crashed = once(app, 'crashed');
  const restarting = once(app, 'restarting');
  process.kill(pid, 'SIGKILL');
  const [exit] = await crashed;
  t.ok(exit.signal === 'SIGKILL' || exit.code === 137, `exit ${JSON.stringify(exit)}`);
  const [{ inMs }] = await restarting;
  t.equal(inMs, 100);
  await once(app, 'ready');
  t.equal(app.state, 'running');
  t.equal(app.restarts, 1);
  t.not(app.pid, pid);
  t.equal(readFileSync(pidFile, 'utf8').trim(), String(app.pid));
  t.equal((await get(port)).body, 'blue v0\n');
  t.match(app.snapshot().lastExit, { at: String });
});

t.test('an app crashing on a request is restarted', async (t) => {
  const { app, port } = await startable(t);
  await app.start();
  await get(port, '/crash');
  const [exit] = await once(app, 'crashed');
  t.same(exit, { code: 3, signal: null });
  await once(app, 'ready');
  t.equal(app.state, 'running');
});
