// ROOT/COLOR/etc/release.json: what a color runs (commit, where it came from, when),
// written once its install step succeeded, so `status` and an idempotent deploy can
// read it without git. Written atomically: a crash leaves the old file or the new one.
import { mkdir, readFile, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Color } from '../config.js';
import { writeFileAtomic } from '../layout/atomic.js';

export interface ReleaseInfo {
  commit: string;
  shortCommit: string;
  subject: string;
  /** The SOURCE it was fetched from (a path or URL). */
  source: string;
  /** What COMMIT named in SOURCE: "refs/heads/main", "refs/tags/v1", or the sha. */
  ref: string;
  /** ISO time. */
  deployedAt: string;
  installMs: number;
}

export function releasePath(root: string, color: Color): string {
  return path.join(root, color, 'etc', 'release.json');
}

export async function writeRelease(root: string, color: Color, info: ReleaseInfo): Promise<void> {
  const file = releasePath(root, color);
  await mkdir(path.dirname(file), { recursive: true });
  writeFileAtomic(file, `${JSON.stringify(info, null, 2)}\n`);
}

/** The color's release, or null when none was written (or the file is not a release). */
export async function readRelease(root: string, color: Color): Promise<ReleaseInfo | null> {
  let text: string;
  try {
    text = await readFile(releasePath(root, color), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null) return null;
  const r = v as Record<string, unknown>;
  if (typeof r.commit !== 'string' || !/^[0-9a-f]{40,64}$/.test(r.commit)) return null;
  const str = (k: string): string => (typeof r[k] === 'string' ? (r[k] as string) : '');
  return {
    commit: r.commit,
    shortCommit: str('shortCommit') || r.commit.slice(0, 7),
    subject: str('subject'),
    source: str('source'),
    ref: str('ref'),
    deployedAt: str('deployedAt'),
    installMs: typeof r.installMs === 'number' ? r.installMs : 0,
  };
}

/** Removes a color's release.json (e.g. before seeding it anew, so a failed deploy never looks done). */
export async function clearRelease(root: string, color: Color): Promise<void> {
  await unlink(releasePath(root, color)).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
}

/**
 * The commit `color` runs, or null when it holds no release or its release.json cannot be
 * read: what an operation records and compares, never a reason for it to fail.
 */
export async function releasedCommit(root: string, color: Color): Promise<string | null> {
  return (await readRelease(root, color).catch(() => null))?.commit ?? null;
}
