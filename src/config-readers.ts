// The readers parseConfig is built from: each takes a raw value and its dotted key, and
// returns the typed value or throws BG_CONFIG naming the key. Also used for CLI flags.
import { BgError } from './errors.js';

export interface Listen {
  host: string;
  port: number;
}

export type Raw = unknown;

export function fail(key: string, problem: string): never {
  throw new BgError('BG_CONFIG', `config: ${key}: ${problem}`);
}

export function describe(v: Raw): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'string' ? `"${v.length > 40 ? `${v.slice(0, 40)}…` : v}"` : typeof v;
}

export function obj(v: Raw, key: string, allowed: readonly string[]): Record<string, Raw> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(key, `must be an object, got ${describe(v)}`);
  for (const k of Object.keys(v)) {
    if (!allowed.includes(k)) fail(key ? `${key}.${k}` : k, unknownKey(k, allowed));
  }
  return v as Record<string, Raw>;
}

/** "unknown key (did you mean "start"?); valid keys: …" — what cargo and git say for a typo. */
export function unknownKey(k: string, allowed: readonly string[]): string {
  const guess = didYouMean(k, allowed);
  return `unknown key${guess ? ` (did you mean "${guess}"?)` : ''}; valid keys: ${allowed.join(', ')}`;
}

/** The closest of `candidates` to `word` when it is close enough to be a typo, else null. */
export function didYouMean(word: string, candidates: readonly string[]): string | null {
  const w = word.toLowerCase();
  let best: string | null = null;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const d = c.toLowerCase() === w ? 0 : editDistance(w, c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  // A third of the word, at least one edit: "strat" -> "start", "colour" -> "colors", not "x" -> "dir".
  return best !== null && bestDistance <= Math.max(1, Math.floor(w.length / 3)) ? best : null;
}

/** Levenshtein distance with adjacent transpositions counted as one edit. */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** ", write 5000 without quotes" when a number came as a string: JSON numbers have no quotes. */
function quotedNumber(v: Raw): string {
  return typeof v === 'string' && /^-?\d+(\.\d+)?$/.test(v.trim()) ? ` (write ${v.trim()} without quotes)` : '';
}

export function str(v: Raw, key: string, opts: { nonEmpty?: boolean } = {}): string {
  if (typeof v !== 'string') fail(key, `must be a string, got ${describe(v)}`);
  if (opts.nonEmpty && v.trim() === '') fail(key, 'must not be empty');
  if (/[\0\r\n]/.test(v)) fail(key, 'must not contain NUL or line breaks');
  return v;
}

export function int(v: Raw, key: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) fail(key, `must be an integer, got ${describe(v)}${quotedNumber(v)}`);
  if (v < min || v > max) fail(key, `must be between ${min} and ${max}, got ${v}`);
  return v;
}

export function num(v: Raw, key: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) fail(key, `must be a number, got ${describe(v)}${quotedNumber(v)}`);
  if (v < min || v > max) fail(key, `must be between ${min} and ${max}, got ${v}`);
  return v;
}

export function strList(v: Raw, key: string): string[] {
  if (typeof v === 'string') return [str(v, key)];
  if (!Array.isArray(v)) fail(key, `must be a list of strings, got ${describe(v)}`);
  return v.map((x, i) => str(x, `${key}[${i}]`, { nonEmpty: true }));
}

export function oneOf<T extends string>(v: Raw, key: string, values: readonly T[]): T {
  if (typeof v !== 'string' || !values.includes(v as T)) {
    fail(key, `must be one of ${values.map((x) => `"${x}"`).join(', ')}, got ${describe(v)}`);
  }
  return v as T;
}

export function opt<T>(o: Record<string, Raw>, k: string, key: string, read: (v: Raw, key: string) => T, dflt: T): T {
  const v = o[k];
  return v === undefined ? dflt : read(v, key ? `${key}.${k}` : k);
}

const HOST_LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/** Lower-cases and checks a host name (no port); throws naming the key. Used for config and flags. */
export function parseHostName(v: Raw, key: string): string {
  const s = str(v, key).toLowerCase().replace(/\.$/, '');
  if (s.length === 0 || s.length > 253) fail(key, `malformed host name ${describe(v)}`);
  const labels = s.split('.');
  // A leading "*." is allowed only as a whole label (nginx-style wildcard is not supported).
  if (!labels.every((l) => HOST_LABEL.test(l))) fail(key, `malformed host name ${describe(v)}`);
  return s;
}

/** A port: a number, or (from a flag or inside "HOST:PORT") a string of digits when `fromText`. */
export function parsePort(v: Raw, key: string, allowZero = false, fromText = true): number {
  const n = fromText && typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  return int(n, key, allowZero ? 0 : 1, 65535);
}

/** "HOST:PORT", "PORT", ":PORT" or "[v6]:PORT". Port 0 asks the OS for a free port. */
export function parseListen(v: Raw, key = 'listen'): Listen {
  if (typeof v === 'number') return { host: '0.0.0.0', port: parsePort(v, key, true) };
  const s = str(v, key, { nonEmpty: true }).trim();
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s[\]]*)):(\d+)$/.exec(s) ?? /^()()(\d+)$/.exec(s);
  if (!m) fail(key, `must be "HOST:PORT" or "PORT", got ${describe(v)}`);
  const host = m[1] || m[2] || '0.0.0.0';
  if (!m[1] && host !== '0.0.0.0' && !/^[a-zA-Z0-9.-]+$/.test(host)) fail(key, `malformed host in ${describe(v)}`);
  return { host, port: parsePort(m[3], key, true) };
}

export function formatListen(l: Listen): string {
  return l.host.includes(':') ? `[${l.host}]:${l.port}` : `${l.host}:${l.port}`;
}
