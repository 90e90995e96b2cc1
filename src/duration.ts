// One duration format for every flag that takes one (--watch, --timeout, --retry-after,
// verify --duration): 250ms, 5s, 2m, 1.5h, or a bare number in the unit the flag's help
// names. Before, `--watch 5` was refused, `--retry-after 120` accepted and verify took seconds only.
import { BgError } from './errors.js';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const UNIT_NAMES: Record<string, string> = { ms: 'milliseconds', s: 'seconds', m: 'minutes', h: 'hours' };

export interface DurationOptions {
  /** The unit of a bare number ("5"): seconds unless the flag's help says otherwise. */
  bare?: 'ms' | 's' | 'm' | 'h';
  /** The longest accepted, in ms (default 24 h). */
  maxMs?: number;
}

/** "250ms", "5s", "2m", "1.5h", "5" (in `bare` units) -> milliseconds, rounded. */
export function parseDuration(v: string, flag: string, opts: DurationOptions = {}): number {
  const bare = opts.bare ?? 's';
  const maxMs = opts.maxMs ?? 24 * 3_600_000;
  const m = /^(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h)?$/.exec(v.trim());
  const ms = m ? Math.round(Number(m[1]) * (UNITS[m[2] ?? bare] as number)) : Number.NaN;
  if (!Number.isFinite(ms)) {
    throw new BgError('BG_USAGE', `${flag}: expected a duration like 250ms, 5s or 2m (a bare number is ${UNIT_NAMES[bare]}), got "${v}"`);
  }
  if (ms > maxMs) throw new BgError('BG_USAGE', `${flag}: at most ${formatMs(maxMs)}, got "${v}"`);
  return ms;
}

/** 500 -> "500ms", 90000 -> "90s", 7200000 -> "2h": the shortest exact form, for messages. */
export function formatMs(ms: number): string {
  if (ms >= 3_600_000 && ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms >= 60_000 && ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms >= 1000 && ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
