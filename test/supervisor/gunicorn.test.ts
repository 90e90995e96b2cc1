// The Flask example under Debian's real gunicorn, run exactly as its bgproxy.json says:
// install step, start command, graceful SIGTERM; no master or worker may survive a stop.
import { cpSync, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import t from 'tap';
import { appEnv, parseConfig } from '../../src/config.js';
import { silentLogger } from '../../src/log.js';
import { AppProcess } from '../../src/supervisor/app-process.js';
import { groupMembers } from '../../src/supervisor/process-group.js';
import { freePort } from '../helpers/ports.js';
import { alive, get } from './setup.js';

const EXAMPLE = fileURLToPath(new URL('../../examples/flask-gunicorn', import.meta.url));

const probe = existsSync('/usr/bin/python3')
  ? await execa('/usr/bin/python3', ['-c', 'import flask, gunicorn, venv'], { reject: false })
  : null;
const missing = probe?.exitCode === 0 ? null : 'needs Debian gunicorn, python3-flask, python3-venv (apt-get install gunicorn python3-flask python3-venv)';

t.test('examples/flask-gunicorn under gunicorn: serves, restarts and stops without orphans', { skip: missing ?? false }, async (t) => {
  const root = t.testdir({});
  const dir = path.join(root, 'blue', 'repo', 'examples', 'flask-gunicorn');
  cpSync(EXAMPLE, dir, { recursive: true });
  const config = parseConfig(JSON.parse(readFileSync(path.join(EXAMPLE, 'bgproxy.json'), 'utf8')), root);
  const port = await freePort();
  const env: Record<string, string> = { ...appEnv(config, 'blue', { PORT: String(port) }), NODE_OPTIONS: '' };
  t.equal(env.BLUEGREEN, 'blue');

  for (const cmd of config.app.install) {
    const r = await execa('/bin/sh', ['-c', cmd], { cwd: dir, env, reject: false, all: true });
    t.equal(r.exitCode, 0, `install: ${cmd}`, { output: r.all });
  }

  const app = new AppProcess({
    color: 'blue',
    port,
    command: config.app.start!,
    cwd: dir,
    env,
    health: config.app.health,
    startTimeoutMs: 30_000,
    stopSignal: config.app.stopSignal,
    stopTimeoutMs: 15_000,
    logFile: path.join(root, 'logs', 'blue.log'),
    logMaxBytes: config.app.logMaxBytes,
    pidFile: path.join(root, 'blue', 'etc', 'app.pid'),
    logger: silentLogger(),
  });
  t.teardown(() => app.stop());

  const runOnce = async (label: string): Promise<number[]> => {
    await app.start();
    const res = await get(port, '/');
    t.equal(res.body, 'Hello 0-downtime blue World!\n', `${label}: served by the example`);
    // Health says the master listens; its workers may still be booting, so wait for both.
    const pgid = app.pid!;
    let members = groupMembers(pgid);
    for (let i = 0; i < 100 && members.length < 3; i++) {
      await new Promise((r) => setTimeout(r, 100));
      members = groupMembers(pgid);
    }
    t.equal(members.length, 3, `${label}: master and 2 workers in the group (${members.join(' ')})`);
    // The start command is plain, so the shell exec'd gunicorn: the pid file names its master.
    const pidFromFile = Number(readFileSync(path.join(root, 'blue', 'etc', 'app.pid'), 'utf8'));
    t.equal(pidFromFile, pgid);
    t.match(readFileSync(`/proc/${pgid}/cmdline`, 'utf8'), /gunicorn/, `${label}: pid file holds gunicorn's master`);
    return members;
  };

  const first = await runOnce('first start');
  const firstPgid = app.pid!;
  await app.restart();
  t.same(groupMembers(firstPgid), [], 'restart: the old group is gone');
  for (const pid of first) t.notOk(alive(pid), `restart: old pid ${pid} gone`);

  const second = await runOnce('after restart');
  const pgid = app.pid!;
  const { killed } = await app.stop();
  t.equal(killed, false, 'SIGTERM was enough (graceful)');
  t.same(groupMembers(pgid), [], 'stop: the group is empty');
  for (const pid of second) t.notOk(alive(pid), `stop: pid ${pid} gone`);
  t.match(readFileSync(path.join(root, 'logs', 'blue.log'), 'utf8'), /Booting worker/, 'gunicorn logged to the capped log');
});
