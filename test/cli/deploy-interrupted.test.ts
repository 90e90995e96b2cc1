// serve killed with SIGKILL in the middle of a slow install: the next serve knows the
// deploy never finished (COLOR/etc/failed.json), does not start the half-installed
// checkout, shows next failed, and cutover refuses it until a deploy completes.
// (SIGTERM mid-install: deploy-sigterm.test.ts.)
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import t from 'tap';
import { WorkRepo } from '../deploy/git-repos.js';
import { FIXTURE_APP, waitFor } from '../helpers/apps.js';
import { BIN, cli, serve } from '../helpers/cli.js';
import { get } from '../helpers/http.js';
import { freePort } from '../helpers/ports.js';
import { killGroupIn } from '../helpers/procs.js';
import { makeRoot, tempDir } from '../helpers/root.js';

t.test('kill -9 of serve mid-install: the next serve shows next failed (interrupted) and cutover refuses it', async (t) => {
  const repo = WorkRepo.init(path.join(tempDir(t), 'app'));
  repo.commit('v1', { 'app.js': readFileSync(FIXTURE_APP, 'utf8'), VERSION: 'v1\n' });
  const installPid = path.join(tempDir(t), 'install.pid');
  const root = makeRoot(t, {
    hosts: { live: ['live.test'], next: ['next.live.test'] },
    colors: { blue: { port: await freePort() }, green: { port: await freePort() } },
    app: {
      repo: repo.dir,
      // Slow only while the marker exists: the second deploy runs it at full speed.
      install: [`if [ -f ${installPid}.slow ]; then echo $$ > ${installPid}; exec sleep 60; fi`],
      start: 'APP_VERSION=$(cat VERSION) exec node app.js',
      env: { NODE_OPTIONS: '' },
      health: { path: '/health', intervalMs: 200 },
    },
  });
  // The install's group outlives a serve killed with SIGKILL: the test stops it.
  t.teardown(() => killGroupIn(installPid));
  writeFileSync(`${installPid}.slow`, '');

  const first = await serve(t, root);
  const deploy = execa('node', [BIN, 'deploy', '--root', root], { reject: false });
  await waitFor(() => {
    if (deploy.exitCode !== null) throw new Error(`the deploy ended before its install ran: ${deploy.exitCode}`);
    try {
      return readFileSync(installPid, 'utf8').trim() !== '';
    } catch {
      return false;
    }
  }, 90_000, 'the install to run');
  await first.stop('SIGKILL');
  const cut = await deploy;
  t.equal(cut.exitCode, 1, 'the deploy command reports the lost server');
  killGroupIn(installPid);

  const second = await serve(t, root);
  const status = JSON.parse((await cli(['status', '--json', '--root', root])).stdout);
  t.equal(status.colors.green.state, 'failed');
  t.match(status.colors.green.reason, /the deploy of [0-9a-f]{7} .*did not complete: interrupted \(pid \d+ stopped or was killed during it\)/);
  t.equal(status.colors.green.pid, null, 'the half-installed checkout was not started');
  const c = await cli(['cutover', '--root', root]);
  t.equal(c.code, 1);
  t.match(c.stderr, /green is marked failed/);

  rmSync(`${installPid}.slow`);
  const d = await cli(['deploy', '--root', root]);
  t.equal(d.code, 0, d.stderr);
  t.equal(await get(second.port, 'next.live.test'), 'green v1');
  const c2 = await cli(['cutover', '--root', root]);
  t.equal(c2.code, 0, c2.stderr);
  t.equal(await second.stop(), 0);
});
