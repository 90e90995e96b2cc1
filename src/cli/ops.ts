// Commands that talk to the running server: status, reload.
import type { Command } from 'commander';
import type { ReloadPlan, Status } from '../bgproxy.js';
import { resolveRoot } from '../config.js';
import { controlRequest } from '../control/client.js';
import { formatMs } from '../duration.js';
import { summarizeReport } from '../release/report.js';
import { formatWatch } from '../release/watch.js';
import { plural } from '../words.js';
import { table } from './output.js';

function ago(ms: unknown): string {
  if (typeof ms !== 'number') return '-';
  const s = Math.round(ms / 1000);
  return s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : `${Math.round(s / 3600)}h`;
}

export function formatStatus(s: Status): string {
  const head = `live: ${s.live}   next: ${s.next}   mode: ${s.mode}${s.listen ? `   listen: ${s.listen}` : ''}${s.tls?.listen ? `   tls: ${s.tls.listen}` : ''}   bgproxy ${s.version}`;
  const rows = [['COLOR', 'ROLE', 'PORT', 'STATE', 'HEALTHY', 'PID', 'UPTIME', 'RESTARTS', 'INFLIGHT', 'SERVED', 'RELEASE']];
  const notes: string[] = [];
  for (const c of ['blue', 'green'] as const) {
    const x = s.colors[c];
    const subject = typeof x.subject === 'string' ? ` "${x.subject.length > 40 ? `${x.subject.slice(0, 39)}…` : x.subject}"` : '';
    rows.push([
      c,
      s.live === c ? 'live' : 'next',
      String(x.port),
      x.state,
      x.healthy ? 'yes' : 'no',
      x.pid === null ? '-' : String(x.pid),
      ago(x.uptimeMs),
      typeof x.restarts === 'number' ? String(x.restarts) : '-',
      String(x.inflight),
      String(x.served),
      x.commit ? `${x.commit.slice(0, 7)}${subject}` : '-',
    ]);
    if (x.reason) notes.push(`${c}: ${x.reason}`);
  }
  for (const o of s.tls?.acme?.orders ?? []) {
    if (o.lastError) notes.push(`tls: certificate for ${o.hosts.join(', ')}: ${plural(o.failures, 'failed attempt')}, last: ${o.lastError}`);
  }
  if (s.deploy) {
    const d = s.deploy;
    notes.push(`deploy running: ${d.commit ? d.commit.slice(0, 7) : '(resolving)'} into ${d.color}, step ${d.step}, ${ago(d.elapsedMs)} so far; bgproxy deploy --cancel stops it`);
  }
  if (s.config?.changedSinceLoad) {
    const refusal = s.config.reloadRefusal?.replace(/; nothing was reloaded$/, '');
    const what = refusal ? `bgproxy reload would refuse it (${refusal})` : 'bgproxy reload applies it';
    notes.push(`${s.config.file} has changed since serve loaded it (${s.config.loadedAt}): ${what}`);
  }
  return `${head}\n${table(rows)}\n${notes.map((n) => `${n}\n`).join('')}${formatTraffic(s)}${formatLastRelease(s)}`;
}

function pct(rate: number): string {
  return `${Math.round(rate * 1000) / 10}%`;
}

/** Access rules, pause, maintenance and canary, one line each that applies (nothing when all are off). */
export function formatTraffic(s: Status): string {
  const t = s.traffic;
  if (!t) return '';
  const lines: string[] = [];
  for (const role of ['live', 'next'] as const) {
    const a = t.access[role];
    if (!a) continue;
    const parts = [a.allow ? `from ${a.allow.join(', ')}` : '', a.basicAuthUser ? `basic auth as ${a.basicAuthUser}` : ''].filter(Boolean);
    lines.push(`access ${role}: ${parts.join(' and ')}`);
  }
  if (t.maintenance) lines.push(`maintenance: ON since ${t.maintenance.since} (503, Retry-After ${t.maintenance.retryAfterS}, ${t.maintenance.page} page); bgproxy maintenance off ends it`);
  if (t.pause) {
    const p = t.pause;
    lines.push(`paused since ${p.since}: ${plural(p.waiting, 'request')} waiting (up to ${formatMs(p.timeoutMs)} each), ${p.timedOut} timed out, ${p.refused} refused; bgproxy resume lets them go`);
  }
  if (t.canary) {
    const c = t.canary;
    const per = (['blue', 'green'] as const).map((x) => `${x} ${plural(c.colors[x].requests, 'request')}, ${pct(c.colors[x].errorRate)} 5xx`).join('; ');
    lines.push(`canary: ${c.percent}% of live traffic to ${c.color} since ${c.since} (${per})${c.watch ? `; ${formatWatch(c.watch)}` : ''}`);
  } else if (t.lastCanary) {
    lines.push(`last canary: ${t.lastCanary.percent}% to ${t.lastCanary.color}, ${t.lastCanary.how} at ${t.lastCanary.ended}`);
  }
  return lines.map((l) => `${l}\n`).join('');
}

/** "last cutover to green: ok - beforeCutover ok (120 ms); warm-up: …" and the watch, when there are any. */
function formatLastRelease(s: Status): string {
  const lines: string[] = [];
  const r = s.lastRelease;
  if (r) {
    const outcome = r.result === 'failed' ? `failed at ${r.step ?? 'validate'}: ${r.message}` : r.result;
    const steps = summarizeReport(r);
    lines.push(`last ${r.action}${r.color ? ` to ${r.color}` : ''}: ${outcome}${steps && r.result !== 'failed' ? ` - ${steps}` : ''}`);
  }
  const w = s.watch;
  if (w) {
    const rb = w.rollback;
    const back = rb ? (rb.ok ? `; rolled back to ${rb.live} ${rb.msSinceCutover} ms after the cutover` : `; rollback failed: ${rb.error}`) : '';
    lines.push(`${formatWatch(w)}${back}`);
  }
  return lines.map((l) => `${l}\n`).join('');
}

export function registerOps(program: Command): void {
  program
    .command('status')
    .description('roles, commit, pid, health and in-flight requests of each color')
    .option('--root <dir>', 'the root directory')
    .option('--json', 'print one JSON object')
    .action(async (f: { root?: string; json?: boolean }) => {
      const s = (await controlRequest(resolveRoot(f.root), 'status')) as Status;
      process.stdout.write(f.json ? `${JSON.stringify(s)}\n` : formatStatus(s));
    });
  program
    .command('reload')
    .description('apply bgproxy.json to the running serve without a restart (what SIGHUP does), all or nothing')
    .option('--root <dir>', 'the root directory')
    .option('--json', 'print one JSON object')
    .action(async (f: { root?: string; json?: boolean }) => {
      const plan = (await controlRequest(resolveRoot(f.root), 'reload')) as ReloadPlan;
      process.stdout.write(f.json ? `${JSON.stringify(plan)}\n` : formatReload(plan));
    });
}

export function formatReload(plan: ReloadPlan): string {
  // Own certificates are read again at every reload: a new one is news even when the config is not.
  if (plan.changed.length === 0) return plan.notes.length ? `${plan.notes.map((n) => `${n}\n`).join('')}config otherwise unchanged\n` : 'config unchanged\n';
  const later = plan.atNextStart.length
    ? `the apps use ${plan.atNextStart.join(', ')} from their next start (bgproxy restart next, or the next deploy)\n`
    : '';
  return `reloaded: ${plan.changed.join(', ')}\n${later}${plan.notes.map((n) => `${n}\n`).join('')}`;
}
