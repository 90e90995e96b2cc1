// The suite's process reaper (test/helpers/reaper.ts): a test process that leaves
// processes and temp dirs behind, by exiting without its teardown or by being killed
// (SIGKILL, as tap does at a file's timeout), leaves nothing once it is gone.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import t, { type Test } from 'tap';
import { REAPER_ENV, startTime } from '../helpers/reaper.js';
import { tempDir } from '../helpers/root.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const LEAKY = path.join(ROOT, 'test/fixtures/reaper/leaky.ts');
/** The node-args tap gives every test process, from package.json. */
const NODE_ARGS = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { tap: { 'node-arg': string[] } }).tap['node-arg'];

interface Leak {
  procs: Array<{ pid: number; start: string | null }>;
  dir: string;
}

/** Alive: the same process (same start time) is there and not a zombie. */
function alive(p: { pid: number; start: string | null }): boolean {
  try {
    const stat = readFileSync(`/proc/${p.pid}/stat`, 'utf8');
    return startTime(p.pid) === p.start && stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

async function waitFor(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  for (const until = Date.now() + timeoutMs; Date.now() < until; await new Promise((r) => setTimeout(r, 50))) {
    if (cond()) return true;
  }
  return cond();
}

/** Runs the leaky test process as tap would (its node-args, its own reaper). */
function runLeaky(t: Test, mode: 'exit' | 'hang') {
  const out = path.join(tempDir(t, 'bgreaper-test-'), 'leak.json');
  // Without this process's token: the leaky process is a test process of its own.
  const env: Record<string, string | undefined> = { ...process.env, NODE_OPTIONS: '' };
  delete env[REAPER_ENV];
  const child = execa('node', [...NODE_ARGS, LEAKY, out, mode], { cwd: ROOT, env, extendEnv: false, reject: false, timeout: 120_000 });
  return { child, out };
}

t.test('a test process that exits without its teardown leaves no process and no temp dir', async (t) => {
  const { child, out } = runLeaky(t, 'exit');
  const r = await child;
  t.equal(r.exitCode, 0, String(r.stderr));
  const leak = JSON.parse(readFileSync(out, 'utf8')) as Leak;
  t.equal(leak.procs.length, 5);
  t.ok(
    await waitFor(() => !leak.procs.some(alive), 30_000),
    `every process it left is gone: ${JSON.stringify(leak.procs.filter(alive))}`,
  );
  t.ok(await waitFor(() => !existsSync(leak.dir), 30_000), 'its temp dir is gone');
  t.match(String(r.stderr), /bgproxy test reaper: test process \d+ left [1-9]\d* process\(es\) running; killed: .*sleep 300/, 'the leak is reported');
});

t.test('a test process killed with SIGKILL leaves no process and no temp dir', async (t) => {
  const { child, out } = runLeaky(t, 'hang');
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  t.ok(await waitFor(() => existsSync(out) || child.exitCode !== null, 90_000), 'the leaky process started its processes');
  const leak = JSON.parse(readFileSync(out, 'utf8')) as Leak;
  t.ok(leak.procs.every(alive), 'they run while it runs');
  child.kill('SIGKILL');
  const r = await child;
  t.equal(r.signal, 'SIGKILL');
  t.ok(
    await waitFor(() => !leak.procs.some(alive), 30_000),
    `every process it left is gone: ${JSON.stringify(leak.procs.filter(alive))}`,
  );
  t.ok(await waitFor(() => !existsSync(leak.dir), 30_000), 'its temp dir is gone');
});
