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
    if (!allowed.includes(k)) fail(key ? `${key}.${k}` : k, 'unknown key');
  }
  return v as Record<string, Raw>;
}

export function str(v: Raw, key: string, opts: { nonEmpty?: boolean } = {}): string {
  if (typeof v !== 'string') fail(key, `must be a string, got ${describe(v)}`);
  if (opts.nonEmpty && v.trim() === '') fail(key, 'must not be empty');
  if (/[\0\r\n]/.test(v)) fail(key, 'must not contain NUL or line breaks');
  return v;
}

export function int(v: Raw, key: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) fail(key, `must be an integer, got ${describe(v)}`);
  if (v < min || v > max) fail(key, `must be between ${min} and ${max}, got ${v}`);
  return v;
}

export function num(v: Raw, key: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) fail(key, `must be a number, got ${describe(v)}`);
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

export function parsePort(v: Raw, key: string, allowZero = false): number {
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
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
