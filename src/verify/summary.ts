// Turns a LoadResult into the numbers `bgproxy verify` prints: ab-style totals,
// failures by kind, latency percentiles and the timeline of which release answered.
import { type FailedStatus, failedStatuses, likelyCauses } from './hints.js';
import type { LoadResult, Mark, Sample, WsResult } from './load.js';
import { ERROR_KINDS, type ErrorKind, emptyKindCounts, type Percentiles, percentiles } from './stats.js';

export interface Transition {
  /** ms since the load started: the first request answered by `label` in this run. */
  t: number;
  label: string;
}

export interface ClientKindSummary {
  requests: number;
  failed: number;
}

export interface Summary {
  url: string;
  durationMs: number;
  requests: number;
  failed: number;
  failedByKind: Record<ErrorKind, number>;
  reqPerSec: number;
  /** Over requests that got a response (any status); transport failures have no meaningful latency. */
  latency: Percentiles;
  /** Successful responses per label, in order of first appearance. */
  labels: { label: string; count: number }[];
  transitions: Transition[];
  marks: Mark[];
  keepAlive: ClientKindSummary;
  oneShot: ClientKindSummary;
  posts: ClientKindSummary;
  ws: WsResult | null;
  /** True when no request failed and the websocket (if any) stayed healthy. */
  ok: boolean;
  /** The likely cause of a failure class and what to do, one line each (verify/hints.ts). */
  hints: string[];
  /** The non-2xx answers by status and method, most frequent first. */
  statuses: FailedStatus[];
}

export function summarize(result: LoadResult): Summary {
  const samples = result.samples;
  const failedByKind = emptyKindCounts();
  const labelCounts = new Map<string, number>();
  const keepAlive = { requests: 0, failed: 0 };
  const oneShot = { requests: 0, failed: 0 };
  const posts = { requests: 0, failed: 0 };
  for (const s of samples) {
    const bucket = s.keepAlive ? keepAlive : oneShot;
    bucket.requests++;
    if (s.method === 'POST') posts.requests++;
    if (s.error !== null) {
      failedByKind[s.error]++;
      bucket.failed++;
      if (s.method === 'POST') posts.failed++;
    } else if (s.label !== null) {
      labelCounts.set(s.label, (labelCounts.get(s.label) ?? 0) + 1);
    }
  }
  const failed = ERROR_KINDS.reduce((n, k) => n + failedByKind[k], 0);
  const seconds = result.durationMs / 1000;
  const statuses = failedStatuses(samples);
  const hints = likelyCauses({
    url: result.url,
    requests: samples.length,
    failed,
    connectFailed: failedByKind.connect,
    statuses,
    posts,
    ws: result.ws,
  });
  return {
    url: result.url,
    durationMs: result.durationMs,
    requests: samples.length,
    failed,
    failedByKind,
    reqPerSec: seconds > 0 ? samples.length / seconds : 0,
    latency: percentiles(samples.filter((s) => s.status !== null).map((s) => s.ms)),
    labels: [...labelCounts].map(([label, count]) => ({ label, count })),
    transitions: transitions(samples),
    marks: result.marks,
    keepAlive,
    oneShot,
    posts,
    ws: result.ws,
    ok: failed === 0 && (result.ws === null || result.ws.ok),
    hints,
    statuses,
  };
}

/**
 * The sequence of labels over time, each with the start of the first request it
 * answered. Concurrent clients blur the order around a switch A -> B: a request
 * issued before the switch can be answered by A after B's first answer. Such an
 * answer is only a switch back when its request started after some B request had
 * already completed (B was live before it, A after it); otherwise it may simply
 * have reached the proxy before the switch, and is ignored. Fixed time windows
 * would misjudge this on a loaded machine where requests take hundreds of ms.
 */
export function transitions(samples: readonly Sample[]): Transition[] {
  const ok = samples.filter((s) => s.error === null && s.label !== null).sort((a, b) => a.t - b.t);
  const out: Transition[] = [];
  // The earliest completion among answers of the current run.
  let runMinEnd = Number.POSITIVE_INFINITY;
  for (const s of ok) {
    const label = s.label!;
    const last = out[out.length - 1];
    const previous = out[out.length - 2];
    if (last?.label === label) {
      runMinEnd = Math.min(runMinEnd, s.t + s.ms);
    } else if (previous?.label === label && s.t < runMinEnd) {
      // a straggler from before the switch
    } else {
      out.push({ t: s.t, label });
      runMinEnd = s.t + s.ms;
    }
  }
  return out;
}

const MAX_TIMELINE = 20;

/** ab-style text, one fact per line, ending with a newline. */
export function formatSummary(s: Summary): string {
  const lines: string[] = [];
  const row = (name: string, value: string): void => {
    lines.push(`${(name + ':').padEnd(24)}${value}`);
  };
  row('URL', s.url);
  row('Time taken', `${sec(s.durationMs)} s`);
  row('Requests', `${s.requests}`);
  row(
    'Failed requests',
    `${s.failed}` +
      (s.failed > 0 ? `   (${ERROR_KINDS.filter((k) => k !== 'other' || s.failedByKind[k] > 0).map((k) => `${kindName(k)}: ${s.failedByKind[k]}`).join(', ')})` : ''),
  );
  if (s.statuses.length > 0) row('  non-2xx answers', s.statuses.slice(0, 6).map((f) => `${f.status} to ${f.method}: ${f.count}`).join(', '));
  row('  keep-alive', `${s.keepAlive.requests} requests, ${s.keepAlive.failed} failed`);
  row('  new connection each', `${s.oneShot.requests} requests, ${s.oneShot.failed} failed`);
  if (s.posts.requests > 0) row('  POST with body', `${s.posts.requests} requests, ${s.posts.failed} failed`);
  if (s.ws !== null) row('Websocket', formatWs(s.ws));
  row('Requests per second', s.reqPerSec.toFixed(1));
  lines.push('');
  lines.push('Latency (ms)');
  const l = s.latency;
  for (const [name, v] of [
    ['50%', l.p50],
    ['90%', l.p90],
    ['99%', l.p99],
    ['100%', l.max],
  ] as const) {
    lines.push(`  ${name.padStart(4)}  ${v.toFixed(1).padStart(9)}`);
  }
  lines.push('');
  lines.push('Answered by');
  const width = Math.max(0, ...s.labels.map((x) => x.label.length));
  for (const { label, count } of s.labels) lines.push(`  ${label.padEnd(width)}  ${count}`);
  if (s.labels.length === 0) lines.push('  (nobody)');
  lines.push('');
  lines.push(`Timeline: ${formatTimeline(s.transitions)}`);
  if (s.marks.length > 0) {
    lines.push(`Marks:    ${s.marks.map((m) => `${sec(m.t)}s ${m.label}`).join(', ')}`);
  }
  if (s.hints.length > 0) lines.push('', ...s.hints.map((h) => `Likely cause: ${h}`));
  return lines.join('\n') + '\n';
}

/** "0.0s blue v1 -> 2.3s green v2", shortened after 20 entries. */
export function formatTimeline(ts: readonly Transition[]): string {
  if (ts.length === 0) return '(no successful response)';
  const shown = ts.slice(0, MAX_TIMELINE).map((x) => `${sec(x.t)}s ${x.label}`);
  const more = ts.length > MAX_TIMELINE ? ` -> ... (${ts.length - MAX_TIMELINE} more switches)` : '';
  return shown.join(' -> ') + more;
}

function formatWs(ws: WsResult): string {
  const base = `${ws.sent} sent, ${ws.echoed} echoed`;
  if (ws.ok) return `${base}, stayed open`;
  const why = ws.closedAt !== null ? `closed at ${sec(ws.closedAt)}s: ${ws.error}` : (ws.error ?? `${ws.lost} lost`);
  return `FAILED (${why}); ${base}`;
}

function kindName(k: ErrorKind): string {
  return k === 'non2xx' ? 'non-2xx' : k;
}

function sec(ms: number): string {
  return (ms / 1000).toFixed(1);
}
