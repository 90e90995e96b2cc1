// `bgproxy fleet status`: every server's `bgproxy status --json`, as one table. A server
// that cannot be reached is a row that says so, never a missing row.

import { table } from '../cli/output.js';
import type { Status } from '../types.js';
import { runRemote } from './remote.js';
import type { FleetRun } from './run.js';

export interface ServerStatus {
  name: string;
  ok: boolean;
  status: Status | null;
  /** Why it has no status: unreachable, no serve running… */
  error: { code: string; message: string } | null;
}

export async function fleetStatus(run: FleetRun): Promise<ServerStatus[]> {
  // Status changes nothing: ask every server at once, also after a Ctrl-C (to report where each stands).
  const outcomes = await run.each((s) => runRemote<Status>(run.ssh, s, ['status', '--json']), {
    parallel: run.servers.length,
    evenIfInterrupted: true,
  });
  return outcomes.map((o) => ({
    name: o.server.name,
    ok: o.state === 'ok',
    status: o.state === 'ok' ? o.value : null,
    error: o.state === 'failed' ? { code: o.error.code, message: o.error.message } : o.state === 'not started' ? { code: 'BG_FLEET', message: 'not asked (interrupted)' } : null,
  }));
}

function side(s: Status, color: 'blue' | 'green'): string {
  const c = s.colors[color];
  return `${color} ${c.commit ? c.commit.slice(0, 7) : '-'}`;
}

export function formatFleetStatus(rows: readonly ServerStatus[]): string {
  const out = [['SERVER', 'LIVE', 'NEXT', 'HEALTHY', 'INFLIGHT', 'BGPROXY', 'LAST RELEASE']];
  const notes: string[] = [];
  for (const r of rows) {
    const s = r.status;
    if (!s) {
      out.push([r.name, r.error?.code === 'BG_UNREACHABLE' ? 'UNREACHABLE' : 'UNKNOWN', '-', '-', '-', '-', '-']);
      notes.push(r.error?.message ?? `${r.name}: no status`);
      continue;
    }
    const live = s.colors[s.live];
    const next = s.colors[s.next];
    const last = s.lastRelease;
    out.push([
      r.name,
      side(s, s.live),
      side(s, s.next),
      `live ${live.healthy ? 'yes' : 'NO'}, next ${next.healthy ? 'yes' : 'no'}`,
      String(live.inflight + next.inflight),
      s.version ?? '?',
      last ? `${last.action}${last.color ? ` to ${last.color}` : ''} ${last.result}${last.time ? ` ${last.time}` : ''}` : '-',
    ]);
  }
  const commits = new Set(rows.filter((r) => r.status).map((r) => r.status!.colors[r.status!.live].commit ?? '-'));
  if (commits.size > 1) notes.push(`the live colors do not all run the same commit (${[...commits].map((c) => c.slice(0, 7)).join(', ')})`);
  // A server still on an older bgproxy may lack what a release asks of it (an option, a step).
  const versions = new Set(rows.filter((r) => r.status).map((r) => r.status!.version ?? '?'));
  if (versions.size > 1) notes.push(`the servers do not all run the same bgproxy (${[...versions].join(', ')}); upgrade them to one version before a release`);
  return `${table(out)}\n${notes.map((n) => `${n}\n`).join('')}`;
}
