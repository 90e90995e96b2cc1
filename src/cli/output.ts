// What the CLI prints: one-line errors (plus detail lines), tables.
import { BgError, exitCodeFor, isBgError } from '../errors.js';

export function printError(err: unknown): number {
  if (isBgError(err)) {
    process.stderr.write(`bgproxy: ${err.message}\n`);
    if (err.detail) process.stderr.write(`${err.detail.replace(/\n?$/, '\n')}`);
  } else if (systemError(err)) {
    // A file the user named could not be read or written: say which and why, not where in bgproxy.
    const e = err as NodeJS.ErrnoException;
    process.stderr.write(`bgproxy: cannot ${e.syscall} ${e.path}: ${SYSTEM_REASONS[e.code as string] ?? e.code}\n`);
  } else {
    process.stderr.write(`bgproxy: unexpected error: ${(err as Error)?.stack ?? String(err)}\n`);
  }
  return exitCodeFor(err);
}

const SYSTEM_REASONS: Record<string, string> = {
  EACCES: 'permission denied (run as the user that owns the root, or fix its permissions)',
  EPERM: 'operation not permitted',
  ENOENT: 'no such file or directory',
  ENOTDIR: 'a part of the path is a file, not a directory',
  EISDIR: 'is a directory',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on the device',
};

function systemError(err: unknown): boolean {
  const e = err as NodeJS.ErrnoException | null;
  return e instanceof Error && typeof e.code === 'string' && typeof e.syscall === 'string' && typeof e.path === 'string';
}

export function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const r of rows) {
    for (const [i, c] of r.entries()) widths[i] = Math.max(widths[i] ?? 0, c.length);
  }
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n');
}

export function usage(message: string): BgError {
  return new BgError('BG_USAGE', message);
}
