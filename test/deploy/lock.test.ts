import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { acquireLock, lockPath, readLock } from '../../src/deploy/lock.js';

const LOCK_MODULE = fileURLToPath(new URL('../../src/deploy/lock.ts', import.meta.url));
// The TypeScript loader tap runs this file with (tsx), so a child can import lock.ts too.
const TS_LOADER = process.execArgv.filter((a) => /^--import=(tsx|.*@tapjs\/typescript)/.test(a));

/** A node child that tries to take the lock and prints "won" or the error code. */
function contender(root: string, holdMs: number): ChildProcess {
  const script = `
    import { acquireLock } from ${JSON.stringify(LOCK_MODULE)};
    try {
      await acquireLock(${JSON.stringify(root)}, 'deploy');
      process.stdout.write('won\\n');
      setTimeout(() => {}, ${holdMs});
    } catch (err) {
      process.stdout.write((err.code ?? String(err)) + '\\n');
    }`;
  return spawn(process.execPath, [...TS_LOADER, '--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
}

function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(out.slice(0, nl));
    });
    child.once('exit', (code) => reject(new Error(`child exited (${code}) before printing: ${out}`)));
  });
}

/** A pid that no process has: a child that already exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', '']);
  return r.pid ?? 999_999;
}

function writeLock(root: string, content: object | string): void {
  mkdirSync(path.join(root, 'run'), { recursive: true });
  writeFileSync(lockPath(root), typeof content === 'string' ? content : JSON.stringify(content));
}

t.test('one holder at a time; the refusal names the holder', async (t) => {
  const root = t.testdir();
  const lock = await acquireLock(root, 'deploy');
  t.match(await readLock(root), { pid: process.pid, action: 'deploy' });
  await t.rejects(acquireLock(root, 'cutover'), {
    code: 'BG_LOCKED',
    message: new RegExp(`^deploy in progress \\(pid ${process.pid}, started \\d+s ago\\)$`),
  });
  await lock.release();
  await lock.release();
  t.equal(await readLock(root), null);
  const again = await acquireLock(root, 'cutover');
  await again.release();
  t.same(readdirSync(path.join(root, 'run')), [], 'no lock or temp file left');
});

t.test('release does not remove a lock that is no longer ours', async (t) => {
  const root = t.testdir();
  const lock = await acquireLock(root, 'deploy');
  writeLock(root, { pid: process.pid, action: 'rollback', startedAt: new Date().toISOString(), token: 'other' });
  await lock.release();
  t.match(await readLock(root), { action: 'rollback' });
});

t.test('a lock whose holder was SIGKILLed is taken over', async (t) => {
  const root = t.testdir();
  const child = contender(root, 60_000);
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  t.equal(await firstLine(child), 'won');
  await t.rejects(acquireLock(root, 'deploy'), { code: 'BG_LOCKED', message: new RegExp(`pid ${child.pid}`) });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
  const lock = await acquireLock(root, 'deploy');
  t.equal(lock.pid, process.pid);
  await lock.release();
});

t.test('stale locks: dead pid, pid reused by another process, unreadable content', async (t) => {
  const root = t.testdir();
  const stale = { pid: deadPid(), action: 'deploy', startedAt: new Date().toISOString(), token: 'a', procStart: null };
  writeLock(root, stale);
  t.equal(await readLock(root), null, 'a dead holder does not hold');
  await (await acquireLock(root, 'deploy')).release();

  // Our own pid is alive, but with another start time it is another process (after a reboot).
  writeLock(root, { ...stale, pid: process.pid, procStart: '1' });
  await (await acquireLock(root, 'deploy')).release();

  writeLock(root, 'garbage');
  await (await acquireLock(root, 'deploy')).release();
});

t.test('concurrent contenders on a stale lock: exactly one wins (in one process)', async (t) => {
  const root = t.testdir();
  const dead = deadPid();
  for (let round = 0; round < 30; round++) {
    writeLock(root, { pid: dead, action: 'deploy', startedAt: new Date().toISOString(), token: `dead${round}` });
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => acquireLock(root, 'deploy')));
    const won = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    if (won.length !== 1) t.fail(`round ${round}: ${won.length} winners`);
    const losers = results.filter((r) => r.status === 'rejected');
    if (!losers.every((r) => (r.reason as { code?: string }).code === 'BG_LOCKED')) t.fail(String(losers[0]));
    t.same(readdirSync(path.join(root, 'run')), ['lock'], 'no temp or marker files left behind');
    for (const lock of won) await lock.release();
  }
});

t.test('concurrent contenders on a stale lock: exactly one wins (across processes)', async (t) => {
  const root = t.testdir();
  writeLock(root, { pid: deadPid(), action: 'deploy', startedAt: new Date().toISOString(), token: 'dead' });
  const children = Array.from({ length: 3 }, () => contender(root, 10_000));
  t.teardown(() => {
    for (const c of children) c.kill('SIGKILL');
  });
  const lines = await Promise.all(children.map(firstLine));
  t.same(lines.filter((l) => l === 'won').length, 1, lines.join(','));
  t.same(lines.filter((l) => l === 'BG_LOCKED').length, 2);
});
