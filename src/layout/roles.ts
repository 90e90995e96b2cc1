// The persisted roles: ROOT/live and ROOT/next, relative symlinks to "blue" or "green".
// They are the recipe's layout, so a root made by hand with `ln -s` is read as-is.
import { readlinkSync, renameSync, symlinkSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { type Color, otherColor, type Role } from '../config.js';
import { BgError } from '../errors.js';
import { fsyncDir } from './atomic.js';

export interface Roles {
  live: Color;
  next: Color;
}

function readLink(root: string, role: Role): Color | null {
  try {
    const target = path.basename(readlinkSync(path.join(root, role)).replace(/\/+$/, ''));
    return target === 'blue' || target === 'green' ? target : null;
  } catch {
    return null;
  }
}

/** What is on disk, without repairing: null where a link is missing or points elsewhere. */
export function readRawRoles(root: string): { live: Color | null; next: Color | null } {
  return { live: readLink(root, 'live'), next: readLink(root, 'next') };
}

/** Replaces ROOT/<role> by rename(2) of a fresh symlink: no reader ever sees it missing. */
function pointRole(root: string, role: Role, color: Color): void {
  const link = path.join(root, role);
  const tmp = path.join(root, `.${role}.tmp-${process.pid}`);
  try {
    unlinkSync(tmp);
  } catch {}
  symlinkSync(color, tmp);
  try {
    renameSync(tmp, link);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {}
    throw err;
  }
}

/**
 * Persists `live` as the live color and the other as next. live is renamed first: a crash
 * between the two renames leaves both links on the new live color, which repairRoles()
 * resolves the same way (live wins).
 */
export function writeRoles(root: string, live: Color): Roles {
  const roles = { live, next: otherColor(live) };
  try {
    pointRole(root, 'live', roles.live);
    pointRole(root, 'next', roles.next);
  } catch (err) {
    throw new BgError('BG_LAYOUT', `cannot switch the role links in ${root}: ${(err as Error).message}`, { cause: err });
  }
  fsyncDir(root);
  return roles;
}

export interface Repair {
  roles: Roles;
  /** What was wrong and fixed, or null when the disk was consistent. */
  repaired: string | null;
}

/**
 * Makes the links consistent, deterministically: a valid live link wins (it is renamed first
 * by writeRoles, so after a crash it holds the newer truth); else a valid next link decides;
 * else live -> blue, next -> green.
 */
export function repairRoles(root: string): Repair {
  const raw = readRawRoles(root);
  if (raw.live && raw.next && raw.live !== raw.next) return { roles: { live: raw.live, next: raw.next }, repaired: null };
  let live: Color;
  let problem: string;
  if (raw.live && raw.next) {
    live = raw.live;
    problem = `live and next both pointed at ${raw.live}`;
  } else if (raw.live) {
    live = raw.live;
    problem = 'next link was missing or invalid';
  } else if (raw.next) {
    live = otherColor(raw.next);
    problem = 'live link was missing or invalid';
  } else {
    live = 'blue';
    problem = 'both role links were missing or invalid';
  }
  return { roles: writeRoles(root, live), repaired: `${problem}; now live -> ${live}, next -> ${otherColor(live)}` };
}
