// "A deploy killed with SIGKILL does not leave the root locked": the deploy runs inside
// serve, so both ways of killing it are tried, the command and the server.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import t from 'tap';
import { WorkRepo } from '../deploy/git-repos.js';
import { FIXTURE_APP, waitFor } from '../helpers/apps.js';
import { BIN, cli, serve } from '../helpers/cli.js';
import { get } from '../helpers/http.js';
import { freePort } from '../helpers/ports.js';
import { makeRoot, tempDir } from '../helpers/root.js';

t.test('SIGKILL of the deploy command or of serve mid-deploy leaves no stale lock', async (t) => {
  const repo = WorkRepo.init(path.join(tempDir(t), 'app'));
  repo.commit('v1', { 'app.js': readFileSync(FIXTURE_APP, 'utf8'), VERSION: 'v1\n' });
  const root = makeRoot(t, {
    hosts: { live: ['live.test'], next: ['next.live.test'] },
    colors: { blue: { port: await freePort() }, green: { port: await freePort() } },
    app: {
      repo: repo.dir,
      install: ['sleep 2'],
      start: 'APP_VERSION=$(cat VERSION) exec node app.js',
      env: { NODE_OPTIONS: '' },
      health: { path: '/health', intervalMs: 200 },
    },
  });
  const deployHoldsLock = (): boolean => {
    try {
      return readFileSync(path.join(root, 'run', 'lock'), 'utf8').includes('"deploy"');
    } catch {
      return false;
    }
  };
  const first = await serve(t, root);
  // 1. The command is killed: the deploy goes on inside serve and releases the lock.
  const killed = execa('node', [BIN, 'deploy', '--root', root], { reject: false });
  await waitFor(deployHoldsLock, 60_000, 'the deploy to take the lock');
  killed.kill('SIGKILL');
  await killed;
  await first.waitFor((l) => l.event === 'deployed', 60_000);
  t.equal(await get(first.port, 'next.live.test'), 'green v1', 'the deploy finished without its command');
  const again = await cli(['deploy', '--root', root]);
  t.equal(again.code, 0, again.stderr);
  t.match(again.stdout, /nothing to do/, 'the lock was free');

  // 2. serve is killed mid-deploy: the next serve and deploy take over the dead lock.
  repo.commit('v2', { VERSION: 'v2\n' });
  const mid = execa('node', [BIN, 'deploy', '--root', root], { reject: false });
  await waitFor(deployHoldsLock, 60_000, 'the deploy to take the lock');
  await first.stop('SIGKILL');
  const cut = await mid;
  t.equal(cut.exitCode, 1, 'the command reports the lost server');
  const second = await serve(t, root);
  const d = await cli(['deploy', '--root', root]);
  t.equal(d.code, 0, d.stderr);
  t.match(d.stdout, /green now runs [0-9a-f]{7} "v2"/);
  t.equal(await get(second.port, 'next.live.test'), 'green v2');
  t.equal(await second.stop(), 0);
});
