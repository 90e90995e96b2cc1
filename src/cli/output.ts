// What the CLI prints: one-line errors (plus detail lines), tables.
import { BgError, exitCodeFor, isBgError } from '../errors.js';

export function printError(err: unknown): number {
  if (isBgError(err)) {
    process.stderr.write(`bgproxy: ${err.message}\n`);
    if (err.detail) process.stderr.write(`${err.detail.replace(/\n?$/, '\n')}`);
  } else {
    process.stderr.write(`bgproxy: unexpected error: ${(err as Error)?.stack ?? String(err)}\n`);
  }
  return exitCodeFor(err);
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
