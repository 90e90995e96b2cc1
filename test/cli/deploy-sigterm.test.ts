// SIGTERM (systemctl stop, Ctrl-C) to serve in the middle of a slow install: the deploy
// ends (its commands' groups killed, next marked failed), the apps stop, serve exits, and
// the deploy command says that serve stopped and the deploy did not finish. Nothing survives.
import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import t from 'tap';
import { WorkRepo } from '../deploy/git-repos.js';
import { FIXTURE_APP, waitFor } from '../helpers/apps.js';
import { BIN, cli, serve } from '../helpers/cli.js';
import { freePort } from '../helpers/ports.js';
import { alive, killGroupIn } from '../helpers/procs.js';
import { makeRoot, tempDir } from '../helpers/root.js';

t.test('SIGTERM to serve mid-install: the deploy is interrupted, serve exits, no process is left', async (t) => {
  const repo = WorkRepo.init(path.join(tempDir(t), 'app'));
  repo.commit('v1', { 'app.js': readFileSync(FIXTURE_APP, 'utf8'), VERSION: 'v1\n' });
  const installPid = path.join(tempDir(t), 'install.pid');
  const root = makeRoot(t, {
    hosts: { live: ['live.test'], next: ['next.live.test'] },
    colors: { blue: { port: await freePort() }, green: { port: await freePort() } },
    drainTimeoutMs: 3000,
    app: {
      repo: repo.dir,
      install: [`echo $$ > ${installPid}; exec sleep 60`],
      start: 'exec node app.js',
      env: { NODE_OPTIONS: '' },
      health: { path: '/health', intervalMs: 200 },
      stopTimeoutMs: 3000,
    },
  });
  t.teardown(() => killGroupIn(installPid));
  copyFileSync(FIXTURE_APP, path.join(root, 'blue', 'repo', 'app.js'));
  const srv = await serve(t, root);
  await waitFor(async () => JSON.parse((await cli(['status', '--json', '--root', root])).stdout).colors.blue.state === 'running', 20_000, 'blue running');
  const bluePid = Number(readFileSync(path.join(root, 'blue', 'etc', 'app.pid'), 'utf8'));
  const deploy = execa('node', [BIN, 'deploy', '--root', root], { reject: false });
  await waitFor(() => {
    if (deploy.exitCode !== null) throw new Error(`the deploy ended before its install ran: ${deploy.exitCode}`);
    return existsSync(installPid) && readFileSync(installPid, 'utf8').trim() !== '';
  }, 90_000, 'the install to run');
  const sleepPid = Number(readFileSync(installPid, 'utf8'));
  t.ok(alive(sleepPid), 'the install runs');

  srv.child.kill('SIGTERM');
  const code = await srv.stop(); // waits for the exit; the helper's teardown would SIGKILL after 15 s
  t.equal(code, 0, 'serve exited after its stop');
  t.ok(srv.logs.some((l) => l.event === 'deploy-interrupted'), 'serve logged the interruption');
  const d = await deploy;
  t.equal(d.exitCode, 1, 'the deploy command fails');
  t.match(String(d.stderr), /deploy into green: interrupted at install: bgproxy serve is stopping/);
  t.notOk(alive(sleepPid), 'the install command was killed');
  t.notOk(alive(bluePid), 'the app was stopped');
  t.match(readFileSync(path.join(root, 'green', 'etc', 'failed.json'), 'utf8'), /interrupted at install/);
});
