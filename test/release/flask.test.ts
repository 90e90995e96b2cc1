// The classic recipe's app, for real: Flask under Debian's gunicorn, deployed from git
// into a color, then cut over. Needs gunicorn and python3-flask (.ci/run installs them).
import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { loadConfig } from '../../src/config.js';
import { silentLogger } from '../../src/log.js';
import { startServer } from '../../src/serve.js';
import { groupMembers } from '../../src/supervisor/process-group.js';
import { WorkRepo } from '../deploy/git-repos.js';
import { waitFor } from '../helpers/apps.js';
import { get } from '../helpers/http.js';
import { freePort } from '../helpers/ports.js';
import { makeRoot, tempDir } from '../helpers/root.js';

const example = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../examples/flask-gunicorn');
const haveGunicorn = existsSync('/usr/bin/gunicorn') || existsSync('/usr/lib/python3/dist-packages/gunicorn');

t.test('Flask example: deployed from git into gunicorn, cut over, drained restart leaves no orphan', { skip: haveGunicorn ? false : 'gunicorn is not installed' }, async (t) => {
  const repo = WorkRepo.init(path.join(tempDir(t), 'flask'));
  for (const f of ['app.py', 'requirements.txt']) copyFileSync(path.join(example, f), path.join(repo.dir, f));
  repo.git('add', '.');
  repo.git('commit', '-q', '-m', 'Flask app');
  const exampleApp = JSON.parse(readFileSync(path.join(example, 'bgproxy.json'), 'utf8')).app;
  const root = makeRoot(t, {
    hosts: { live: ['shop.test'], next: ['next.shop.test'] },
    colors: { blue: { port: await freePort() }, green: { port: await freePort() } },
    app: { ...exampleApp, repo: repo.dir, dir: '.', startTimeoutMs: 30_000, stopTimeoutMs: 10_000 },
  });
  const running = await startServer({ config: loadConfig(root), logger: silentLogger(), accessLog: false });
  t.teardown(() => running.stop());
  const port = Number(running.listen!.split(':').pop());
  const d = await running.bg.deploy();
  t.equal(d.color, 'green');
  t.equal(await get(port, 'next.shop.test'), 'Hello 0-downtime green World!');
  await running.bg.cutover({ force: false });
  t.equal(await get(port, 'shop.test'), 'Hello 0-downtime green World!');
  const pid = (await running.bg.status()).colors.green.pid as number;
  // gunicorn answers as soon as its first worker is up; the second may still be forking.
  await waitFor(() => groupMembers(pid).length >= 3, 15_000, 'gunicorn master and 2 workers');
  t.ok(groupMembers(pid).length >= 3, 'gunicorn master and 2 workers in one group');
  await running.bg.restartColor('green');
  t.equal(groupMembers(pid).length, 0, 'the old master and workers are all gone');
  t.equal(await get(port, 'shop.test'), 'Hello 0-downtime green World!');
});
