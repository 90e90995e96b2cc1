// Temp files of buffered exchanges, seen from the process that holds them: they are unlinked
// at once, so they show only as "(deleted)" fds under ROOT/run/tmp.
import { readdirSync, readlinkSync, statSync } from 'node:fs';
import path from 'node:path';

/** Open fds of process `pid` (default this one) on files in `root`'s temp dir. */
export function tempFds(root: string, pid: number | 'self' = 'self'): number {
  const dir = path.join(root, 'run', 'tmp');
  let n = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith(dir)) n++;
    } catch {}
  }
  return n;
}

/** Bytes in the temp files process `pid` holds open in `root`'s temp dir (they are unlinked: stat through the fd). */
export function tempBytes(root: string, pid: number | 'self' = 'self'): number {
  const dir = path.join(root, 'run', 'tmp');
  let n = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith(dir)) n += statSync(`/proc/${pid}/fd/${fd}`).size;
    } catch {}
  }
  return n;
}
