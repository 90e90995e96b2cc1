// While a deploy runs in serve: status shows it (commit, step, elapsed); Ctrl-C on the
// deploy command says the deploy goes on and how to follow or stop it; `deploy --cancel`
// stops it (its command killed, next marked failed).
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import t from 'tap';
import { WorkRepo } from '../deploy/git-repos.js';
import { FIXTURE_APP, waitFor } from '../helpers/apps.js';
import { BIN, cli, serve } from '../helpers/cli.js';
import { freePort } from '../helpers/ports.js';
import { alive } from '../helpers/procs.js';
import { makeRoot, tempDir } from '../helpers/root.js';

t.test('status shows a running deploy; Ctrl-C on deploy says it goes on; deploy --cancel stops it', async (t) => {
  const repo = WorkRepo.init(path.join(tempDir(t), 'app'));
  const sha = repo.commit('v1', { 'app.js': readFileSync(FIXTURE_APP, 'utf8'), VERSION: 'v1\n' });
  const installPid = path.join(tempDir(t), 'install.pid');
  const root = makeRoot(t, {
    hosts: { live: ['live.test'], next: ['next.live.test'] },
    colors: { blue: { port: await freePort() }, green: { port: await freePort() } },
    app: {
      repo: repo.dir,
      install: [`echo $$ > ${installPid}; exec sleep 60`],
      start: 'exec node app.js',
      env: { NODE_OPTIONS: '' },
      health: { path: '/health', intervalMs: 200 },
    },
  });
  t.teardown(() => {
    try {
      process.kill(-Number(readFileSync(installPid, 'utf8')), 'SIGKILL');
    } catch {}
  });
  const srv = await serve(t, root);
  const deploy = execa('node', [BIN, 'deploy', '--root', root], { reject: false });
  await waitFor(() => {
    if (deploy.exitCode !== null) throw new Error(`the deploy ended before its install ran: ${deploy.exitCode}`);
    return existsSync(installPid) && readFileSync(installPid, 'utf8').trim() !== '';
  }, 90_000, 'the install to run');
  const sleepPid = Number(readFileSync(installPid, 'utf8'));

  const s = JSON.parse((await cli(['status', '--json', '--root', root])).stdout);
  t.match(s.deploy, { color: 'green', commit: sha, step: 'install' });
  t.type(s.deploy.elapsedMs, 'number');
  const human = await cli(['status', '--root', root]);
  t.match(human.stdout, new RegExp(`deploy running: ${sha.slice(0, 7)} into green, step install, \\d+s so far; bgproxy deploy --cancel stops it`));

  deploy.kill('SIGINT');
  const d = await deploy;
  t.equal(d.exitCode, 130);
  t.match(String(d.stderr), /the deploy goes on inside bgproxy serve\. Follow it: bgproxy status --root .*; stop it: bgproxy deploy --cancel --root /);
  t.ok(alive(sleepPid), 'the deploy went on');

  const c = await cli(['deploy', '--cancel', '--root', root]);
  t.equal(c.code, 0, c.stderr);
  t.match(c.stdout, new RegExp(`^cancelled the deploy of ${sha.slice(0, 7)} into green at install; green is marked failed until a deploy completes`));
  t.notOk(alive(sleepPid), 'the install command was killed');
  const after = JSON.parse((await cli(['status', '--json', '--root', root])).stdout);
  t.equal(after.deploy, null, 'no deploy running');
  t.equal(after.colors.green.state, 'failed');
  t.match(after.colors.green.reason, /interrupted at install: cancelled by bgproxy deploy --cancel/);
  const again = await cli(['deploy', '--cancel', '--root', root]);
  t.equal(again.code, 1);
  t.match(again.stderr, /no deploy is running/);
  t.equal(await srv.stop(), 0);
});
