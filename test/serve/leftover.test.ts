// A serve killed with SIGKILL leaves its apps running (they are detached process groups);
// the next serve stops them before starting its own, so the port is free again.
import { copyFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { FIXTURE_APP, waitFor } from '../helpers/apps.js';
import { cli, serve } from '../helpers/cli.js';
import { get } from '../helpers/http.js';
import { freePort } from '../helpers/ports.js';
import { alive } from '../helpers/procs.js';
import { makeRoot } from '../helpers/root.js';

t.test('apps left by a killed serve are stopped by the next serve', async (t) => {
  const root = makeRoot(t, {
    hosts: { live: ['live.test'], next: [] },
    colors: { blue: { port: await freePort() }, green: { port: await freePort() } },
    app: { start: 'exec node app.js', env: { NODE_OPTIONS: '' }, health: { path: '/health' }, stopTimeoutMs: 2000 },
  });
  copyFileSync(FIXTURE_APP, path.join(root, 'blue', 'repo', 'app.js'));
  const first = await serve(t, root);
  await waitFor(async () => JSON.parse((await cli(['status', '--json', '--root', root])).stdout).colors.blue.state === 'running');
  const oldPid = Number(readFileSync(path.join(root, 'blue', 'etc', 'app.pid'), 'utf8'));
  t.ok(alive(oldPid));
  await first.stop('SIGKILL');
  t.ok(alive(oldPid), 'the app outlived its serve');

  const second = await serve(t, root);
  await waitFor(async () => JSON.parse((await cli(['status', '--json', '--root', root])).stdout).colors.blue.state === 'running', 20_000);
  const status = JSON.parse((await cli(['status', '--json', '--root', root])).stdout);
  t.not(status.colors.blue.pid, oldPid, 'a new app process');
  t.notOk(alive(oldPid), 'the leftover was stopped');
  t.match(await get(second.port, 'live.test'), /^blue/);
  t.equal(await second.stop(), 0);
  t.notOk(alive(status.colors.blue.pid), 'the graceful stop stopped the app too');
});
