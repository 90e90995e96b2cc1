// `bgproxy start`, `stop` and `restart` of the color a deploy is installing into are
// refused in one line naming that deploy (its own restart of the color would race them,
// or undo them); once the deploy is cancelled mid-install, the color's release is
// incomplete and start/restart refuse it in one line too, until a deploy completes.
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import t from 'tap';
import { WorkRepo } from '../deploy/git-repos.js';
import { FIXTURE_APP, waitFor } from '../helpers/apps.js';
import { BIN, cli, oneLine, serve } from '../helpers/cli.js';
import { get } from '../helpers/http.js';
import { freePort } from '../helpers/ports.js';
import { makeRoot, tempDir } from '../helpers/root.js';

t.test('start/stop/restart of a color a deploy installs into are refused; an incomplete release refuses start', async (t) => {
  const repo = WorkRepo.init(path.join(tempDir(t), 'app'));
  const sha = repo.commit('v1', { 'app.js': readFileSync(FIXTURE_APP, 'utf8'), VERSION: 'v1\n' });
  const installPid = path.join(tempDir(t), 'install.pid');
  const root = makeRoot(t, {
    hosts: { live: ['live.test'], next: ['next.live.test'] },
    colors: { blue: { port: await freePort() }, green: { port: await freePort() } },
    app: {
      repo: repo.dir,
      // Slow only while the marker exists: the last deploy runs it at full speed.
      install: [`if [ -f ${installPid}.slow ]; then echo $$ > ${installPid}; exec sleep 60; fi`],
      start: 'APP_VERSION=$(cat VERSION) exec node app.js',
      env: { NODE_OPTIONS: '' },
      health: { path: '/health', intervalMs: 200 },
    },
  });
  t.teardown(() => {
    try {
      process.kill(-Number(readFileSync(installPid, 'utf8')), 'SIGKILL');
    } catch {}
  });
  writeFileSync(`${installPid}.slow`, '');
  const srv = await serve(t, root);
  const deploy = execa('node', [BIN, 'deploy', '--root', root], { reject: false });
  await waitFor(() => {
    if (deploy.exitCode !== null) throw new Error(`the deploy ended before its install ran: ${deploy.exitCode}`);
    return existsSync(installPid) && readFileSync(installPid, 'utf8').trim() !== '';
  }, 90_000, 'the install to run');

  const busy = new RegExp(`^bgproxy: the deploy of ${sha.slice(0, 7)} into green is running \\(step install, \\d+s so far\\): (start|stop|restart) refused`);
  for (const args of [['start', 'green'], ['stop', 'green'], ['restart', 'green'], ['restart', 'next']]) {
    const r = await cli([...args, '--root', root]);
    oneLine(t, r, 1, busy);
    t.match(r.stderr, new RegExp(`: ${args[0]} refused, the deploy restarts green itself; wait for it \\(bgproxy status\\) or stop it \\(bgproxy deploy --cancel\\)`));
  }
  const during = JSON.parse((await cli(['status', '--json', '--root', root])).stdout);
  t.equal(during.colors.green.pid, null, 'the half-installed green was not started');
  t.match(during.deploy, { color: 'green', step: 'install' }, 'the deploy goes on');

  const c = await cli(['deploy', '--cancel', '--root', root]);
  t.equal(c.code, 0, c.stderr);
  await deploy;
  for (const cmd of ['start', 'restart']) {
    const r = await cli([cmd, 'green', '--root', root]);
    oneLine(t, r, 1, new RegExp(`^bgproxy: green's release is incomplete \\(.*interrupted at install: cancelled by bgproxy deploy --cancel\\): ${cmd} refused; deploy again \\(bgproxy deploy\\)$`));
  }
  const after = JSON.parse((await cli(['status', '--json', '--root', root])).stdout);
  t.equal(after.colors.green.pid, null, 'still not started');

  rmSync(`${installPid}.slow`);
  const d = await cli(['deploy', '--root', root]);
  t.equal(d.code, 0, d.stderr);
  t.equal(await get(srv.port, 'next.live.test'), 'green v1');
  const r = await cli(['restart', 'green', '--root', root]);
  t.equal(r.code, 0, r.stderr);
  t.equal(await get(srv.port, 'next.live.test'), 'green v1', 'restart by hand works once the deploy completed');
  t.equal(await srv.stop(), 0);
});
