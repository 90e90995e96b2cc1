// The watchdog of test/helpers/reaper.ts: one per test process that spawns anything. Plain
// JavaScript, so that plain node starts it at once (tsx would cost a second of CPU per file).
//
// argv: TOKEN TEST_PID TEST_START. stdin, from the test process: `child PID START` for every
// child it spawned, `dir PATH` for every temp dir it made. When stdin ends, the test
// process is gone; everything it left is stopped (SIGSTOP, so that nothing forks while it
// is looked for), then killed (SIGKILL), and the temp dirs are removed.
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';

const [token, testPid, testStart] = process.argv.slice(2);
const marker = Buffer.from(`BGPROXY_TEST_REAPER=${token}\0`);
const children = new Map(); // pid -> start time when spawned
const dirs = new Set();
const since = Number(testStart) || 0;

let buf = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => {
  buf += d;
  for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
    const line = buf.slice(0, nl);
    buf = buf.slice(nl + 1);
    if (line.startsWith('dir ')) dirs.add(line.slice(4));
    const [kind, pid, start] = line.split(' ');
    if (kind === 'child') children.set(Number(pid), start);
  }
});
process.stdin.on('close', () => {
  const killed = reap();
  removeDirs();
  if (killed.length > 0) {
    process.stderr.write(`bgproxy test reaper: test process ${testPid} left ${killed.length} process(es) running; killed: ${killed.join('; ').slice(0, 2000)}\n`);
  }
});

/** Every process now: pid -> { ppid, pgid, sid, start, state }. */
function scan() {
  const procs = new Map();
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid <= 1) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      procs.set(pid, { state: f[0], ppid: Number(f[1]), pgid: Number(f[2]), sid: Number(f[3]), start: f[19] });
    } catch {
      // gone meanwhile
    }
  }
  return procs;
}

function carriesToken(pid) {
  try {
    return readFileSync(`/proc/${pid}/environ`).includes(marker);
  } catch {
    return false;
  }
}

/**
 * What the test left: its recorded children (same start time: not a reused pid), every
 * process carrying its token, and, to a fixed point, the descendants of those and the
 * members of the process groups and sessions they lead. Nothing that started before the
 * test process is ever taken.
 */
function leftovers(procs) {
  const found = new Set();
  for (const [pid, p] of procs) {
    if (pid === process.pid || Number(p.start) < since) continue;
    if (children.get(pid) === p.start || carriesToken(pid)) found.add(pid);
  }
  for (let grew = true; grew; ) {
    grew = false;
    for (const [pid, p] of procs) {
      if (found.has(pid) || pid === process.pid || Number(p.start) < since) continue;
      if (found.has(p.ppid) || found.has(p.pgid) || found.has(p.sid)) {
        found.add(pid);
        grew = true;
      }
    }
  }
  return found;
}

function describe(pid) {
  try {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
    return `${pid} ${cmd.slice(0, 120)}`;
  } catch {
    return String(pid);
  }
}

/** Stops what is left until nothing new turns up (a parent may fork meanwhile), then kills it. */
function reap() {
  const stopped = new Map(); // pid -> description (null: a zombie, not worth naming)
  for (let round = 0; round < 50; round++) {
    const procs = scan();
    const fresh = [...leftovers(procs)].filter((pid) => !stopped.has(pid));
    if (fresh.length === 0) break;
    for (const pid of fresh) {
      stopped.set(pid, procs.get(pid)?.state === 'Z' ? null : describe(pid));
      try {
        process.kill(pid, 'SIGSTOP');
      } catch {
        // gone meanwhile
      }
    }
  }
  for (const pid of stopped.keys()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  return [...stopped.values()].filter((d) => d !== null);
}

/** Only what the test made under the temp dir, never the temp dir itself or anything else. */
function removeDirs() {
  for (const dir of dirs) {
    const rel = path.relative('/tmp', dir);
    if (!path.isAbsolute(dir) || rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) continue;
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // left for the machine's tmp cleaner
    }
  }
}
