// A serve killed with SIGKILL, whose app's group leader then exited (a Python parent that
// dies, leaving its forked workers): under a parent that does not reap, the leader is a
// zombie, its /proc/PID/cwd unreadable, while the group lives on. The next serve must
// still recognise the group as this color's leftover (through a live member) and stop it,
// not call it "not this color's app" and leave the workers running beside the new app.
import { copyFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import t from 'tap';
import { waitFor } from '../helpers/apps.js';
import { BIN, cli, serve } from '../helpers/cli.js';
import { get } from '../helpers/http.js';
import { freePort } from '../helpers/ports.js';
import { alive } from '../helpers/procs.js';
import { makeRoot } from '../helpers/root.js';

const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));
const PYTHON = '/usr/bin/python3';

function procState(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] ?? null;
  } catch {
    return null;
  }
}

const running = async (root: string): Promise<boolean> =>
  JSON.parse((await cli(['status', '--json', '--root', root])).stdout || '{}').colors?.blue?.state === 'running';

t.test('a leftover group whose leader is a zombie is found through a live member and stopped', async (t) => {
  const bluePort = await freePort();
  const root = makeRoot(t, {
    hosts: { live: ['live.test'], next: [] },
    colors: { blue: { port: bluePort }, green: { port: await freePort() } },
    app: { start: `exec ${PYTHON} zombie_leader.py`, health: { path: '/health' }, stopTimeoutMs: 2000 },
  });
  copyFileSync(path.join(FIXTURES, 'zombie_leader.py'), path.join(root, 'blue', 'repo', 'zombie_leader.py'));

  // The first serve runs under a subreaper that never reaps: what it leaves stays a zombie.
  const reaper = execa(PYTHON, [path.join(FIXTURES, 'subreaper.py'), process.execPath, BIN, 'serve', '--root', root], {
    reject: false,
    buffer: false,
    env: { NODE_OPTIONS: '' },
  });
  t.teardown(async () => {
    reaper.kill('SIGKILL');
    await reaper;
  });
  await waitFor(() => running(root), 30_000, 'the first serve\'s blue app to run');
  const leader = Number(readFileSync(path.join(root, 'blue', 'etc', 'app.pid'), 'utf8'));
  t.teardown(() => {
    try {
      process.kill(-leader, 'SIGKILL');
    } catch {}
  });
  const body = await (await fetch(`http://127.0.0.1:${bluePort}/`)).text();
  const worker = Number(/worker (\d+)/.exec(body)![1]);
  t.ok(alive(worker), `worker ${worker} runs in the group of ${leader}`);

  const servePid = Number(readFileSync(path.join(root, 'run', 'bgproxy.pid'), 'utf8'));
  process.kill(servePid, 'SIGKILL');
  await waitFor(() => procState(leader) === 'Z', 10_000, 'the leader to exit and stay a zombie');
  t.equal(procState(leader), 'Z', 'the group leader is a zombie');
  t.ok(alive(worker), 'its worker lives on in the group');

  const second = await serve(t, root);
  await waitFor(() => running(root), 30_000, 'the second serve\'s blue app to run');
  await waitFor(() => !alive(worker), 10_000, 'the leftover worker to be stopped').catch(() => undefined);
  t.notOk(alive(worker), 'the leftover worker was stopped');
  t.ok(
    second.logs.some((l) => l.msg === 'stopping an app left running by an earlier serve' && l.pid === leader),
    'serve says it stopped the leftover group',
  );
  t.notOk(
    second.logs.some((l) => typeof l.msg === 'string' && l.msg.includes('not this color\'s app')),
    'and does not call it another process',
  );
  t.match(await get(second.port, 'live.test'), /^blue worker \d+/);
  t.equal(await second.stop(), 0);
});
