// Another process on a color's port (two sites with init's default ports, the recipe's
// gunicorn still running): bgproxy refuses to start that color, names the process, and
// never routes to it; the deploy fails, live keeps serving.
import t from 'tap';
import { readHistory } from '../../src/deploy/history.js';
import { ownership, whoListens } from '../../src/supervisor/port-owner.js';
import { waitFor } from '../helpers/apps.js';
import { startForeign } from '../helpers/foreign.js';
import { get, request } from '../helpers/http.js';
import { freePort } from '../helpers/ports.js';
import { startReleaseSetup } from '../helpers/release.js';

t.test('whoListens names the process on a port; ownership tells ours from foreign', async (t) => {
  const other = await startForeign(t);
  const held = await whoListens(other.port);
  t.equal(held?.holder?.pid, other.pid);
  t.match(held?.holder?.command, /node -e/);
  t.match(await ownership(other.port, other.pid), { kind: 'ours' }, 'the process tree of the holder');
  const another = await startForeign(t);
  t.match(await ownership(other.port, another.pid), { kind: 'foreign', holder: { pid: other.pid } }, 'not the tree of another process');
  await other.stop();
  t.equal(await whoListens(other.port), null, 'free once it is gone');
});

t.test('a foreign listener on next\'s port: deploy refused naming it, next not routed there, live untouched', async (t) => {
  const other = await startForeign(t);
  const { proxy: p, commit } = await startReleaseSetup(t, {}, {
    colors: { blue: { port: await freePort() }, green: { port: other.port } },
  });
  commit('v1');
  const err = await p.bg.deploy().then(
    () => null,
    (e: Error & { code?: string }) => e,
  );
  t.equal(err?.code, 'BG_DEPLOY');
  t.match(err?.message, new RegExp(`^deploy into green: .*port ${other.port} is held by pid ${other.pid} \\(.*node -e`));
  t.notMatch(err?.message, /\n/, 'one line');
  const s = await p.bg.status();
  t.equal(s.colors.green.state, 'failed');
  const next = await request(p.port, 'next.live.test');
  t.equal(next.status, 502, 'the preview host does not serve the other site');
  t.equal(next.body, 'bgproxy: the green app is not running\n');
  await t.rejects(p.bg.deploy({ force: true, cutover: true }), { code: 'BG_DEPLOY', message: /is held by pid/ });
  t.equal(p.bg.roles.live, 'blue', 'nothing was made live');
  t.match((await readHistory(p.root)).at(-1), { action: 'deploy', result: 'failed', step: 'restart' });

  // Once the other process is gone, the same deploy works.
  await other.stop();
  const r = await p.bg.deploy();
  t.equal(r.color, 'green');
  t.equal(await get(p.port, 'next.live.test'), 'green v1');
});

t.test('an earlier app of the same color still on the port (its pid file lost) is stopped, not refused', async (t) => {
  const port = await freePort();
  const { proxy: p, commit } = await startReleaseSetup(t, {}, {
    colors: { blue: { port: await freePort() }, green: { port } },
  });
  // What an earlier serve of this root started for green: bgproxy's own BG_* environment.
  const earlier = await startForeign(t, port, { BG_ROOT: p.root, BG_COLOR: 'green' });
  commit('v1');
  const r = await p.bg.deploy();
  t.equal(r.color, 'green');
  t.equal(await get(p.port, 'next.live.test'), 'green v1');
  await waitFor(() => earlier.child.exitCode !== null || earlier.child.signalCode !== null, 10_000, 'the earlier app to exit');
  t.pass('the earlier app was stopped');
});
