// Making the root's directories one level at a time. Node 20's mkdirSync({recursive: true})
// loops forever where mkdir(2) answers ENOENT for a parent that exists (/proc, some FUSE
// mounts): `init --root /proc/x` hung. Walking the parents ourselves turns every refusal into
// one line that names the place.
import { accessSync, constants, mkdirSync, type Stats, statSync } from 'node:fs';
import path from 'node:path';
import { BgError } from '../errors.js';

/** stat, or null where nothing is (ENOTDIR: a part of the path is a file, found one level up). */
export function statOrNull(p: string): Stats | null {
  try {
    return statSync(p, { throwIfNoEntry: false }) ?? null;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOTDIR') return null;
    throw err;
  }
}

/** The nearest existing ancestor of `dir` (or `dir` itself), and the missing levels below it, outermost first. */
function missingLevels(dir: string): { existing: string; missing: string[] } {
  const missing: string[] = [];
  let cur = path.resolve(dir);
  for (;;) {
    const stat = statOrNull(cur);
    if (stat) {
      if (!stat.isDirectory()) throw new BgError('BG_USAGE', `cannot create ${dir}: ${cur} is a file, not a directory`);
      return { existing: cur, missing };
    }
    missing.unshift(cur);
    const parent = path.dirname(cur);
    if (parent === cur) return { existing: cur, missing };
    cur = parent;
  }
}

/**
 * Throws BG_USAGE unless `dir` exists or can be made: its nearest existing ancestor is a
 * directory this user may write in. Called before anything is written, so a refusal changes nothing.
 */
export function checkCreatable(dir: string): void {
  const { existing, missing } = missingLevels(dir);
  if (missing.length === 0) return;
  try {
    accessSync(existing, constants.W_OK);
  } catch {
    throw new BgError('BG_USAGE', `cannot create ${dir}: ${existing} is not writable by this user (pick another place, or run as its owner)`);
  }
}

/**
 * Creates `dir` and its missing parents with `mode`; returns the levels it made, outermost
 * first. A level the file system refuses is reported in one line (BG_USAGE).
 */
export function makeDirs(dir: string, mode = 0o755): string[] {
  const { missing } = missingLevels(dir);
  for (const level of missing) {
    try {
      mkdirSync(level, { mode });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') continue;
      const why =
        code === 'ENOENT' || code === 'EPERM' || code === 'EROFS'
          ? `the file system at ${path.dirname(level)} does not take new directories (${code}; /proc and /sys never do)`
          : code === 'EACCES'
            ? `${path.dirname(level)} is not writable by this user`
            : String(code ?? err);
      throw new BgError('BG_USAGE', `cannot create ${dir}: ${why}; pick another place for the root`);
    }
  }
  return missing;
}
