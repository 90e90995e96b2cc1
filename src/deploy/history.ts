// ROOT/history.jsonl: one JSON line per deploy, cutover and rollback. Appended with
// O_APPEND in a single write per line, so concurrent writers never interleave a line and
// a crash loses at most the line being written (readHistory skips a torn last line).
import { open, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Color } from '../config.js';

export type HistoryAction = 'deploy' | 'cutover' | 'rollback' | (string & {});
export type HistoryResult = 'ok' | 'failed' | 'noop';

export interface HistoryEntry {
  /** ISO time the operation finished; appendHistory fills it in when omitted. */
  time: string;
  action: HistoryAction;
  /** The color deployed into, or the color made live by a cutover/rollback. */
  color: Color;
  commit?: string | null;
  result: HistoryResult;
  durationMs: number;
  /** Why it failed, or a short note ("already running 3f2a1c9"). */
  message?: string;
  [extra: string]: unknown;
}

export function historyPath(root: string): string {
  return path.join(root, 'history.jsonl');
}

export async function appendHistory(
  root: string,
  entry: Omit<HistoryEntry, 'time'> & { time?: string },
): Promise<HistoryEntry> {
  const full = { ...entry, time: entry.time ?? new Date().toISOString() } as HistoryEntry;
  // time first, so the file reads well with `tail`.
  const { time, ...rest } = full;
  const line = Buffer.from(`${JSON.stringify({ time, ...rest })}\n`);
  const fh = await open(historyPath(root), 'a', 0o644);
  try {
    await fh.write(line, 0, line.length);
  } finally {
    await fh.close();
  }
  return full;
}

/** The entries in file order (oldest first); with n, only the last n. A missing file is empty. */
export async function readHistory(root: string, n?: number): Promise<HistoryEntry[]> {
  let text: string;
  try {
    text = await readFile(historyPath(root), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const entries: HistoryEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      const v = JSON.parse(line) as unknown;
      if (isEntry(v)) entries.push(v);
    } catch {
      // a torn line from a crash mid-write, or a hand edit: skip it
    }
  }
  return n === undefined ? entries : entries.slice(Math.max(0, entries.length - n));
}

function isEntry(v: unknown): v is HistoryEntry {
  if (typeof v !== 'object' || v === null) return false;
  const e = v as Record<string, unknown>;
  return typeof e.time === 'string' && typeof e.action === 'string' && typeof e.result === 'string';
}

const COLUMNS = ['TIME', 'ACTION', 'COLOR', 'COMMIT', 'RESULT', 'DURATION', 'MESSAGE'] as const;

/** A plain-text table, oldest first, times in UTC. */
export function formatHistory(entries: readonly HistoryEntry[]): string {
  if (entries.length === 0) return 'no history yet';
  const rows = entries.map((e) => [
    formatTime(e.time),
    String(e.action),
    String(e.color ?? '-'),
    typeof e.commit === 'string' && e.commit !== '' ? e.commit.slice(0, 7) : '-',
    String(e.result),
    typeof e.durationMs === 'number' ? formatDuration(e.durationMs) : '-',
    typeof e.message === 'string' ? e.message.replace(/\s+/g, ' ') : detailOf(e),
  ]);
  const table = [[...COLUMNS], ...rows];
  const widths = COLUMNS.map((_, i) => Math.max(...table.map((r) => (r[i] ?? '').length)));
  return table
    .map((r) =>
      r
        .map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** What a traffic entry (canary, pause, resume, maintenance) did, from its fields: a canary row showed no share. */
function detailOf(e: HistoryEntry): string {
  const f = e as Record<string, unknown>;
  const num = (k: string): number | null => (typeof f[k] === 'number' ? (f[k] as number) : null);
  const percent = num('percent');
  if (e.action === 'canary' && percent !== null) return `${percent}% of live traffic to ${String(e.color ?? '?')}${typeof f.was === 'string' ? ` (live: ${f.was})` : ''}`;
  if (e.action === 'canary-abort' && typeof f.reason === 'string') return f.reason;
  const timeoutMs = num('timeoutMs');
  if (e.action === 'pause' && timeoutMs !== null) return `live requests wait up to ${formatDuration(timeoutMs)}`;
  const released = num('released');
  if (e.action === 'resume' && released !== null) return `${released} waiting request${released === 1 ? '' : 's'} released`;
  const retryAfterS = num('retryAfterS');
  if (e.action === 'maintenance-on' && retryAfterS !== null) return `503 with Retry-After ${retryAfterS}${typeof f.page === 'string' ? `, ${f.page} page` : ''}`;
  return '';
}

function formatTime(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : `${d.toISOString().slice(0, 19).replace('T', ' ')}Z`;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)}m ${s % 60}s`;
}
