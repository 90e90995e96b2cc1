// One deploy/cutover/rollback at a time per root: ROOT/run/lock, created atomically with
// its content (a temp file hard-linked into place, which fails if the lock exists) and
// holding the holder's pid. A holder that died, even by SIGKILL, leaves a lock whose pid
// is dead; the next contender sees that and takes the lock over (see removeStale).
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { link, mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BgError } from '../errors.js';

export interface LockInfo {
  pid: number;
  /** What the holder does: 'deploy', 'cutover', 'rollback'… */
  action: string;
  /** ISO time the lock was taken. */
  startedAt: string;
  /** Unique per acquisition: tells this lock from a later one of the same pid. */
  token: string;
  /** The holder's start time from /proc (Linux), so a pid reused after a reboot is not taken for the holder. */
  procStart: string | null;
}

export interface Lock extends LockInfo {
  readonly path: string;
  /** Removes the lock if it is still ours; safe to call twice. */
  release(): Promise<void>;
}

export function lockPath(root: string): string {
  return path.join(root, 'run', 'lock');
}

/**
 * Takes the root's lock for `action`, or throws BG_LOCKED naming the live holder:
 * "deploy in progress (pid 123, started 12s ago)". A lock left by a dead process is
 * taken over.
 */
export function acquireLock(root: string, action: string): Promise<Lock> {
  return acquireLockFile(lockPath(root), action);
}

/** The same lock at any path (a fleet's lock lives outside every root). */
export async function acquireLockFile(file: string, action: string): Promise<Lock> {
  await mkdir(path.dirname(file), { recursive: true });
  const info: LockInfo = {
    pid: process.pid,
    action,
    startedAt: new Date().toISOString(),
    token: randomBytes(8).toString('hex'),
    procStart: procStartTime(process.pid),
  };
  const tmp = `${file}.${process.pid}.${info.token}.tmp`;
  await writeFile(tmp, `${JSON.stringify(info)}\n`, { flag: 'wx', mode: 0o644 });
  try {
    // Each round takes the lock, finds a live holder, removes a stale lock, or waits
    // 5 ms for another contender that is removing it.
    for (let round = 0; round < 200; round++) {
      try {
        await link(tmp, file);
        return makeLock(file, info);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const raw = await readFile(file, 'utf8').catch(ignoreEnoent);
      if (raw === null) continue; // released meanwhile
      const held = parseLock(raw);
      if (held !== null && isAlive(held)) throw lockedError(held);
      if (!(await removeStale(file, raw, tmp))) await sleep(5);
    }
    throw new BgError('BG_LOCKED', `could not take ${file}: too many concurrent contenders`);
  } finally {
    await unlink(tmp).catch(() => {});
  }
}

/** The live holder of the root's lock, or null when it is free (or held by a dead process). */
export async function readLock(root: string): Promise<LockInfo | null> {
  const raw = await readFile(lockPath(root), 'utf8').catch(ignoreEnoent);
  const held = raw === null ? null : parseLock(raw);
  return held !== null && isAlive(held) ? held : null;
}

function makeLock(file: string, info: LockInfo): Lock {
  let released = false;
  return {
    ...info,
    path: file,
    async release() {
      if (released) return;
      released = true;
      // Only remove the lock if it is still ours: after a (wrong) takeover it may not be.
      const raw = await readFile(file, 'utf8').catch(ignoreEnoent);
      if (raw !== null && parseLock(raw)?.token === info.token) await unlink(file).catch(ignoreEnoent);
    },
  };
}

/**
 * Removes the lock file if it still holds staleRaw. Removal is not conditional in POSIX, so
 * it is serialised: only the contender that creates the marker `FILE.takeover-<hash of the
 * stale content>` (O_EXCL, via link) may unlink FILE, and only after re-reading it. Every
 * stale generation has its own marker, so a slow contender that judged an older one
 * stale can never remove a newer lock. A marker left by a taker that was itself killed is
 * stale in the same way and removed by the same procedure one level down.
 * Returns false when another live contender is busy taking over (the caller retries).
 */
async function removeStale(file: string, staleRaw: string, ownTmp: string, depth = 0): Promise<boolean> {
  if (depth > 4) throw new BgError('BG_LOCKED', `could not take over ${file}: too many abandoned takeovers`);
  const marker = `${file}.takeover-${createHash('sha256').update(staleRaw).digest('hex').slice(0, 16)}`;
  for (;;) {
    try {
      await link(ownTmp, marker);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const markerRaw = await readFile(marker, 'utf8').catch(ignoreEnoent);
      if (markerRaw === null) continue;
      const taker = parseLock(markerRaw);
      if (taker !== null && isAlive(taker)) return false;
      await removeStale(marker, markerRaw, ownTmp, depth + 1);
      continue;
    }
    try {
      const now = await readFile(file, 'utf8').catch(ignoreEnoent);
      if (now === staleRaw) await unlink(file).catch(ignoreEnoent);
    } finally {
      await unlink(marker).catch(() => {});
    }
    return true;
  }
}

function parseLock(raw: string): LockInfo | null {
  try {
    const v = JSON.parse(raw) as Partial<LockInfo>;
    if (typeof v.pid !== 'number' || !Number.isInteger(v.pid) || v.pid <= 0) return null;
    return {
      pid: v.pid,
      action: typeof v.action === 'string' ? v.action : 'an operation',
      startedAt: typeof v.startedAt === 'string' ? v.startedAt : '',
      token: typeof v.token === 'string' ? v.token : '',
      procStart: typeof v.procStart === 'string' ? v.procStart : null,
    };
  } catch {
    return null; // unreadable: treated as stale (the holder cannot be checked)
  }
}

function isAlive(held: LockInfo): boolean {
  try {
    process.kill(held.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    // EPERM: a process of another user has that pid; judge by the start time below.
  }
  if (held.procStart === null) return true;
  const now = procStartTime(held.pid);
  return now === null || now === held.procStart;
}

/** Field 22 of /proc/PID/stat (start time in ticks since boot), or null off Linux. */
function procStartTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses; fields after it don't.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19] ?? null;
  } catch {
    return null;
  }
}

function lockedError(held: LockInfo): BgError {
  const since = Date.parse(held.startedAt);
  const ago = Number.isNaN(since) ? '' : `, started ${formatAgo(Date.now() - since)} ago`;
  return new BgError('BG_LOCKED', `${held.action} in progress (pid ${held.pid}${ago})`);
}

export function formatAgo(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

function ignoreEnoent(err: unknown): null {
  if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
  throw err;
}
