// ROOT/COLOR/etc/failed.json: why a color must not go live, kept on disk so a restart of
// serve (or a kill -9 in the middle of a deploy) does not forget it. Written when a deploy
// starts changing the color ("running": a serve that finds it later knows the deploy never
// finished) and when it fails; removed when a deploy completes. Without it, a restart showed
// a half-installed checkout as a healthy next, and cutover made it live.
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { Color } from '../config.js';
import { writeFileAtomic } from '../layout/atomic.js';

export interface FailedMark {
  reason: string;
  /** ISO time it was written. */
  at: string;
  /** A deploy was changing the color when this was written (by process `pid`). */
  running?: boolean;
  pid?: number;
}

export function failedPath(root: string, color: Color): string {
  return path.join(root, color, 'etc', 'failed.json');
}

/** Records `mark` (atomically), or removes the record when null. */
export function writeFailedMark(root: string, color: Color, mark: FailedMark | null): void {
  const file = failedPath(root, color);
  if (mark === null) {
    rmSync(file, { force: true });
    return;
  }
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileAtomic(file, `${JSON.stringify(mark)}\n`);
}

/**
 * The reason on disk, as a process that did not write it should show it: a deploy still
 * "running" in a process that is gone was interrupted. null when the color is not marked.
 */
export function readFailedReason(root: string, color: Color): string | null {
  let mark: Partial<FailedMark>;
  try {
    mark = JSON.parse(readFileSync(failedPath(root, color), 'utf8')) as Partial<FailedMark>;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    // Unreadable or torn by hand: still not fit to go live.
    return `${failedPath(root, color)} is unreadable; deploy again`;
  }
  const reason = typeof mark.reason === 'string' && mark.reason ? mark.reason : 'marked failed';
  if (mark.running !== true) return reason;
  const who = typeof mark.pid === 'number' ? `pid ${mark.pid}` : 'its process';
  return `${reason}: interrupted (${who} stopped or was killed during it)`;
}
