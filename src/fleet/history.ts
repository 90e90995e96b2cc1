// FLEETDIR/fleet-history.jsonl: one JSON line per fleet push, deploy, cutover and rollback,
// next to fleet.json (each server keeps its own ROOT/history.jsonl too). Appended in one
// write per line, like a root's history.
import { open, readFile } from 'node:fs/promises';
import path from 'node:path';

export interface FleetHistoryEntry {
  time: string;
  action: 'push' | 'deploy' | 'cutover' | 'rollback';
  result: 'ok' | 'failed' | 'interrupted';
  commit: string | null;
  durationMs: number;
  /** What each server did, in a few words ("switched", "rolled back", "unreachable"…). */
  servers: Record<string, string>;
  /** Cutovers: how far apart the first and the last switch were. */
  spreadMs?: number;
  message?: string;
}

export function fleetHistoryPath(fleetFile: string): string {
  return path.join(path.dirname(fleetFile), 'fleet-history.jsonl');
}

export async function appendFleetHistory(fleetFile: string, entry: Omit<FleetHistoryEntry, 'time'>): Promise<void> {
  const line = Buffer.from(`${JSON.stringify({ time: new Date().toISOString(), ...entry })}\n`);
  const fh = await open(fleetHistoryPath(fleetFile), 'a', 0o644);
  try {
    await fh.write(line, 0, line.length);
  } finally {
    await fh.close();
  }
}

export async function readFleetHistory(fleetFile: string, n?: number): Promise<FleetHistoryEntry[]> {
  let text: string;
  try {
    text = await readFile(fleetHistoryPath(fleetFile), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const entries: FleetHistoryEntry[] = [];
  for (const line of text.split('\n')) {
    try {
      const v = JSON.parse(line) as FleetHistoryEntry;
      if (typeof v?.action === 'string' && typeof v.time === 'string') entries.push(v);
    } catch {
      // a torn last line
    }
  }
  return n === undefined ? entries : entries.slice(-n);
}

/** The commit of the last successful push: what `fleet deploy` with no COMMIT deploys. */
export async function lastPushed(fleetFile: string): Promise<string | null> {
  const entries = await readFleetHistory(fleetFile);
  for (let i = entries.length - 1; i >= 0; i--) {
    const e = entries[i]!;
    if (e.action === 'push' && e.result === 'ok' && e.commit) return e.commit;
  }
  return null;
}

export function formatFleetHistory(entries: readonly FleetHistoryEntry[]): string {
  return entries
    .map((e) => {
      const servers = Object.entries(e.servers)
        .map(([name, what]) => `${name} ${what}`)
        .join(', ');
      const spread = e.spreadMs === undefined ? '' : ` switches ${e.spreadMs} ms apart;`;
      return `${e.time}  ${e.action.padEnd(8)} ${(e.commit ?? '-').slice(0, 7).padEnd(7)}  ${e.result.padEnd(11)} ${e.durationMs} ms;${spread} ${servers}${e.message ? ` - ${e.message}` : ''}`;
    })
    .join('\n');
}
