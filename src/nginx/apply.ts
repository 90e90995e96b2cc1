// A deploy in nginx mode changes next's files when the placeholder gives way to the real include
// (the color's first deploy) or a port or timeout changed; nginx serves what it loaded until it
// reloads. So: write -> nginx -t -> reload -> wait, briefly, for the workers that served the old
// files. A failing test or reload puts the previous bytes back (and reloads again after a reload
// was attempted), so nginx and the disk keep agreeing on what is loaded.
import type { Color, Config } from '../config.js';
import { type FileSnapshot, restoreFiles, writeColorFiles } from './color-files.js';
import { nginxChildren, reloadRestored, runNginx, waitGone, withSuffix } from './process.js';

export interface NginxApplyResult {
  /** The color's files changed, and nginx was tested and reloaded with them. */
  changed: boolean;
  testMs: number;
  reloadMs: number;
  /** Until the workers from before the reload exited; null: unchanged, or master not found. */
  oldWorkersMs: number | null;
  /** Old workers still shutting down when the wait ended (0 when all exited). */
  oldWorkersLeft: number;
}

export interface NginxApplyOptions {
  /** Limit for testCommand and reloadCommand each (default 60000 ms). */
  commandTimeoutMs?: number;
  /** The longest wait for old workers (default 5000 ms, never above drainTimeoutMs). */
  oldWorkersTimeoutMs?: number;
}

export async function applyColorFiles(config: Config, color: Color, opts: NginxApplyOptions = {}): Promise<NginxApplyResult> {
  const previous = writeColorFiles(config, color);
  if (previous.length === 0) return { changed: false, testMs: 0, reloadMs: 0, oldWorkersMs: null, oldWorkersLeft: 0 };
  const timed = async (fn: () => Promise<unknown>): Promise<number> => {
    const started = performance.now();
    await fn();
    return Math.round(performance.now() - started);
  };
  let reloadAttempted = false;
  try {
    const testMs = await timed(() => runNginx('test', config.nginx.testCommand, opts.commandTimeoutMs));
    const before = await nginxChildren(config);
    reloadAttempted = true;
    const reloadMs = await timed(() => runNginx('reload', config.nginx.reloadCommand, opts.commandTimeoutMs));
    // Once the workers from before the reload are gone, every request is served with the new files.
    const waitMs = Math.min(opts.oldWorkersTimeoutMs ?? 5000, config.drainTimeoutMs);
    const waitStarted = performance.now();
    const left = await waitGone(before, waitMs);
    const oldWorkersMs = before === null ? null : Math.round(performance.now() - waitStarted);
    return { changed: true, testMs, reloadMs, oldWorkersMs, oldWorkersLeft: left };
  } catch (err) {
    throw withSuffix(err, await restore(config, color, previous, reloadAttempted, opts.commandTimeoutMs));
  }
}

/** Puts the files back (and reloads with them after a reload was attempted); says what state they are in. */
async function restore(config: Config, color: Color, previous: FileSnapshot[], reload: boolean, timeoutMs?: number): Promise<string> {
  try {
    restoreFiles(config, previous);
  } catch (err) {
    return `; putting ${color}'s nginx files back FAILED too: ${(err as Error).message}`;
  }
  return reloadRestored(config, `; ${color}'s nginx files are back as they were`, reload, timeoutMs);
}

/** One line for a deploy's output. */
export function formatApply(color: Color, r: NginxApplyResult): string {
  if (!r.changed) return `nginx: ${color}'s include unchanged, nginx not reloaded`;
  const old = r.oldWorkersMs === null ? 'old workers: unknown' : `old workers gone in ${r.oldWorkersMs} ms`;
  return `nginx: ${color}'s include changed: test ${r.testMs} ms, reload ${r.reloadMs} ms, ${old}${r.oldWorkersLeft ? `, ${r.oldWorkersLeft} still shutting down` : ''}`;
}
