import { readFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { runCommands } from '../../src/deploy/run-commands.js';
import { isBgError } from '../../src/errors.js';

/** Alive and not a zombie (a container's PID 1 may never reap an orphan). */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return cond();
}

t.test('runs the commands in order in cwd with env, streams lines and logs them', async (t) => {
  const dir = t.testdir({ 'in.txt': 'from cwd\n' });
  const logFile = path.join(dir, 'install.log');
  const lines: string[] = [];
  const { ms } = await runCommands(['cat in.txt', 'echo "color=$BG_COLOR"; echo oops >&2', 'printf "no newline"'], {
    cwd: dir,
    env: { BG_COLOR: 'green' },
    timeoutMs: 10_000,
    step: 'install',
    logFile,
    onLine: (l) => lines.push(l),
  });
  t.ok(ms >= 0);
  t.same(lines, ['from cwd', 'color=green', 'oops', 'no newline']);
  const log = readFileSync(logFile, 'utf8');
  t.match(log, /^\$ cat in\.txt\nfrom cwd\n\$ echo "color=\$BG_COLOR"; echo oops >&2\n/);
  t.match(log, /no newline$/);
});

t.test('a failing command stops the sequence and names itself with the tail of its output', async (t) => {
  const dir = t.testdir();
  const lines: string[] = [];
  const err = await runCommands(['echo first', 'echo start; seq 1 30; echo boom >&2; exit 3', 'echo never'], {
    cwd: dir,
    env: {},
    timeoutMs: 10_000,
    step: 'install',
    onLine: (l) => lines.push(l),
  }).catch((e: unknown) => e);
  t.ok(isBgError(err, 'BG_DEPLOY'));
  t.match(err, { message: 'install failed: "echo start; seq 1 30; echo boom >&2; exit 3" exited with code 3' });
  const detail = (err as { detail: string }).detail.split('\n');
  t.equal(detail.length, 20, 'the last 20 lines');
  t.same([detail[0], detail.at(-2), detail.at(-1)], ['12', '30', 'boom']);
  t.notOk(lines.includes('never'));
});

t.test('a timeout kills the whole process group', async (t) => {
  const dir = t.testdir();
  const pidFile = path.join(dir, 'pid');
  const started = Date.now();
  await t.rejects(
    runCommands([`sleep 30 & echo $! > ${pidFile}; wait`], { cwd: dir, env: {}, timeoutMs: 300, step: 'install' }),
    { code: 'BG_DEPLOY', message: /^install failed: ".*" timed out after 300ms$/ },
  );
  // Waiting for the sleep would take 30 s; the margin is for a slow, loaded machine.
  t.ok(Date.now() - started < 20_000, 'did not wait for sleep');
  const grandchild = Number(readFileSync(pidFile, 'utf8'));
  t.ok(await waitFor(() => !running(grandchild), 3000), 'the background sleep is gone too');
});

t.test('a SIGTERM-ignoring command is killed after the grace period', async (t) => {
  const dir = t.testdir();
  const started = Date.now();
  await t.rejects(
    runCommands(["trap '' TERM; sleep 30 & wait; sleep 30"], { cwd: dir, env: {}, timeoutMs: 200, step: 'hook' }),
    { message: /timed out/ },
  );
  // SIGKILL after the 2 s grace, not the 60 s of sleeps; the margin is for a loaded machine.
  t.ok(Date.now() - started < 20_000, 'killed after the grace period, not after the sleeps');
});

t.test('a daemon left holding stdout does not hang a successful command', async (t) => {
  const dir = t.testdir();
  const pidFile = path.join(dir, 'pid');
  // Waiting for the daemon would end in the timeout (a rejection) or with the daemon gone.
  await runCommands([`sleep 120 & echo $! > ${pidFile}; echo done`], { cwd: dir, env: {}, timeoutMs: 60_000, step: 'x' });
  const pid = Number(readFileSync(pidFile, 'utf8'));
  t.teardown(() => {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  });
  t.ok(running(pid), 'returned while the daemon still runs');
});

t.test('killed by a signal, or unable to start, is a failure too; the code can be chosen', async (t) => {
  const dir = t.testdir();
  await t.rejects(runCommands(['kill -9 $$'], { cwd: dir, env: {}, timeoutMs: 5000, step: 'install' }), {
    message: 'install failed: "kill -9 $$" was killed by SIGKILL',
  });
  await t.rejects(
    runCommands(['true'], { cwd: path.join(dir, 'missing'), env: {}, timeoutMs: 5000, step: 'afterInstall hook', code: 'BG_HOOK' }),
    { code: 'BG_HOOK', message: /^afterInstall hook failed: "true" could not start/ },
  );
  t.same(await runCommands([], { cwd: dir, env: {}, timeoutMs: 1000, step: 'install' }).then(() => 'ok'), 'ok');
});

t.test('GIT_DIR inherited from a git hook does not reach the commands', async (t) => {
  const dir = t.testdir();
  process.env.GIT_DIR = '/srv/shop/repo.git';
  t.teardown(() => {
    delete process.env.GIT_DIR;
  });
  const lines: string[] = [];
  await runCommands(['echo "[$GIT_DIR] $HOME"'], {
    cwd: dir,
    env: {},
    timeoutMs: 5000,
    step: 'install',
    onLine: (l) => lines.push(l),
  });
  t.same(lines, [`[] ${process.env.HOME}`], 'the rest of the environment is inherited');
});
