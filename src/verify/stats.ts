// Numbers for `bgproxy verify`: exact percentiles and the failure kinds a summary
// counts. Kept free of I/O so the summary and the chart can be tested on arrays.

/** Why a request did not count as a success. */
export type ErrorKind = 'connect' | 'reset' | 'timeout' | 'non2xx' | 'other';

/** Display order; also the keys of every `failedByKind` record. */
export const ERROR_KINDS: readonly ErrorKind[] = ['connect', 'reset', 'timeout', 'non2xx', 'other'];

export interface Percentiles {
  count: number;
  min: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/**
 * Nearest-rank percentile of an ascending array (p in [0, 100]); 0 when empty.
 * Nearest-rank always returns an observed value, which is what ab and wrk report.
 */
export function percentileOfSorted(sorted: readonly number[], p: number): number {
  const n = sorted.length;
  if (n === 0) return 0;
  const rank = Math.ceil((Math.min(100, Math.max(0, p)) / 100) * n);
  return sorted[Math.min(n - 1, Math.max(0, rank - 1))]!;
}

/** Exact (sort-based) summary of latencies; fine below ~1e6 values. */
export function percentiles(values: readonly number[]): Percentiles {
  const sorted = Float64Array.from(values).sort();
  const arr = Array.from(sorted);
  let sum = 0;
  for (const v of arr) sum += v;
  return {
    count: arr.length,
    min: arr[0] ?? 0,
    mean: arr.length === 0 ? 0 : sum / arr.length,
    p50: percentileOfSorted(arr, 50),
    p90: percentileOfSorted(arr, 90),
    p99: percentileOfSorted(arr, 99),
    max: arr[arr.length - 1] ?? 0,
  };
}

/** A zeroed count per kind, in display order. */
export function emptyKindCounts(): Record<ErrorKind, number> {
  return { connect: 0, reset: 0, timeout: 0, non2xx: 0, other: 0 };
}

const CONNECT_CODES = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EADDRNOTAVAIL',
]);
const RESET_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE']);
const TIMEOUT_CODES = new Set(['ETIMEDOUT', 'ESOCKETTIMEDOUT', 'ABORT_ERR', 'ERR_VERIFY_TIMEOUT']);

/** Classifies a transport error (not a status). Unknown errors are 'other', never guessed. */
export function classifyError(err: unknown): ErrorKind {
  const e = err as { code?: unknown; name?: unknown; message?: unknown } | null;
  const code = typeof e?.code === 'string' ? e.code : '';
  if (CONNECT_CODES.has(code)) return 'connect';
  if (TIMEOUT_CODES.has(code) || e?.name === 'TimeoutError') return 'timeout';
  if (RESET_CODES.has(code)) return 'reset';
  if (typeof e?.message === 'string' && /socket hang up|reset/i.test(e.message)) return 'reset';
  return 'other';
}

/** null for a 2xx status, 'non2xx' otherwise. */
export function classifyStatus(status: number): ErrorKind | null {
  return status >= 200 && status < 300 ? null : 'non2xx';
}
