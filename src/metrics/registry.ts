// The Prometheus side of the metrics: a prom-client Registry whose bgproxy_* series are read
// at scrape time from what the running proxy already keeps (roles, targets, the supervisor,
// the traffic gates, certificates, the log destination) and from the request counters'
// typed arrays. prom-client formats the text and adds the process metrics (CPU, memory,
// event-loop lag, GC) under the names Node exporters use.
import { collectDefaultMetrics, type Metric, Registry } from 'prom-client';
import { COLORS, type Color } from '../config.js';
import { UPSTREAM_ERROR_KINDS } from '../proxy/exchange.js';
import type { Target } from '../proxy/target.js';
import { VERSION } from '../version.js';
import type { OpsCounters } from './ops.js';
import { BUCKET_SLOTS, DURATION_BUCKETS, METRIC_COLORS, METRIC_ROLES, type RequestCounts, STATUSES } from './requests.js';

/** What the metrics read from the running proxy, at each scrape. */
export interface MetricsSource {
  readonly requests: RequestCounts;
  readonly ops: OpsCounters;
  live(): Color;
  target(color: Color): Target;
  /** The app process of `color` when bgproxy supervises it (app.start), else null. */
  app(color: Color): { up: boolean; restarts: number } | null;
  pause(): { paused: boolean; waiting: number; held: number };
  /** The certificate each TLS host name is served, by name. */
  certificates(): Array<{ host: string; notAfter: Date }>;
  /** Access log and log lines dropped because stdout could not keep up, since start. */
  droppedLogLines(): number;
}

type Labels = Record<string, string>;
interface Sample {
  value: number;
  labels?: Labels;
  /** For a histogram's _bucket, _sum and _count lines. */
  metricName?: string;
}
type Kind = 'counter' | 'gauge' | 'histogram';

/**
 * A metric whose samples are computed when scraped. prom-client's own Counter and Histogram
 * only move through inc()/observe(); these report counts kept elsewhere, in the object that
 * owns them, as prom-client's collectors do for the process metrics.
 */
function computed(registry: Registry, name: string, help: string, type: Kind, samples: () => Sample[]): void {
  const get = async () => ({ name, help, type, aggregator: 'sum', values: samples() });
  registry.registerMetric({ name, help, type, aggregator: 'sum', get } as unknown as Metric);
}

const perColor = (f: (c: Color) => number): Sample[] => COLORS.map((color) => ({ labels: { color }, value: f(color) }));

function requestSamples(r: RequestCounts): Sample[] {
  const out: Sample[] = [];
  for (let series = 0; series < METRIC_ROLES.length * METRIC_COLORS.length; series++) {
    const labels = seriesLabels(series);
    const base = series * STATUSES;
    for (let status = 0; status < STATUSES; status++) {
      const n = r.counts[base + status]!;
      if (n > 0) out.push({ labels: { ...labels, code: String(status) }, value: n });
    }
  }
  return out;
}

function seriesLabels(series: number): Labels {
  return { role: METRIC_ROLES[Math.floor(series / 3)]!, color: METRIC_COLORS[series % 3]! };
}

/** Histogram lines; the four live/next x blue/green series are there from the start (rate() needs a 0). */
function durationSamples(r: RequestCounts): Sample[] {
  const name = 'bgproxy_request_duration_seconds';
  const out: Sample[] = [];
  for (let series = 0; series < METRIC_ROLES.length * METRIC_COLORS.length; series++) {
    const labels = seriesLabels(series);
    const base = series * BUCKET_SLOTS;
    let count = 0;
    for (let b = 0; b < BUCKET_SLOTS; b++) count += r.buckets[base + b]!;
    const always = labels.role !== 'other' && labels.color !== 'none';
    if (count === 0 && !always) continue;
    let cumulative = 0;
    for (let b = 0; b < BUCKET_SLOTS; b++) {
      cumulative += r.buckets[base + b]!;
      const le = b < DURATION_BUCKETS.length ? String(DURATION_BUCKETS[b]) : '+Inf';
      out.push({ metricName: `${name}_bucket`, labels: { ...labels, le }, value: cumulative });
    }
    out.push({ metricName: `${name}_sum`, labels, value: r.sums[series]! });
    out.push({ metricName: `${name}_count`, labels, value: count });
  }
  return out;
}

/** The registry of one running bgproxy: its bgproxy_* metrics and the process metrics. */
export function createRegistry(src: MetricsSource): Registry {
  const registry = new Registry();
  const m = (name: string, help: string, type: Kind, samples: () => Sample[]): void => computed(registry, name, help, type, samples);

  m('bgproxy_info', 'bgproxy version running (always 1).', 'gauge', () => [{ labels: { version: VERSION }, value: 1 }]);
  m('bgproxy_requests_total', 'Requests answered, by role (live|next host, other: refused before routing), color (none: answered by bgproxy) and status code sent (0: never answered: the client left, or the answer was cut off).', 'counter', () =>
    requestSamples(src.requests),
  );
  m('bgproxy_request_duration_seconds', 'Time from the request head to the end of the answer, by role and color (OpenTelemetry http.server.request.duration buckets); upgrades are not included.', 'histogram', () =>
    durationSamples(src.requests),
  );
  m('bgproxy_inflight_requests', 'Requests being answered by each color now.', 'gauge', () => perColor((c) => src.target(c).inflight));
  m('bgproxy_websockets', 'Upgraded connections (websockets) open to each color now.', 'gauge', () => perColor((c) => src.target(c).websockets));
  m('bgproxy_upstream_errors_total', "Requests that failed on the app's side, by color and kind: refused (nothing listening), timeout (upstreamTimeoutMs), reset (connection broken), protocol (not a valid answer). Retries that then worked are not counted.", 'counter', () =>
    COLORS.flatMap((color) => UPSTREAM_ERROR_KINDS.map((kind, i) => ({ labels: { color, kind }, value: src.target(color).upstreamErrors[i]! }))),
  );
  m('bgproxy_live', 'Whether the color is the live one (1) or not (0).', 'gauge', () => {
    const live = src.live();
    return perColor((c) => (c === live ? 1 : 0));
  });
  m('bgproxy_cutovers_total', 'Switches of the live color since serve started (cutovers, rollbacks and automatic rollbacks).', 'counter', () => [{ value: src.ops.cutovers }]);
  m('bgproxy_rollbacks_total', 'Rollbacks and automatic rollbacks since serve started (a canary ended by rollback included).', 'counter', () => [{ value: src.ops.rollbacks }]);
  m('bgproxy_last_cutover_timestamp_seconds', 'When the live color last changed (Unix time); 0 before the first switch since serve started.', 'gauge', () => [{ value: src.ops.lastCutover }]);
  m('bgproxy_deploys_total', 'Deploys since serve started, by result: ok, noop (next already ran that commit, healthy), failed.', 'counter', () =>
    (['ok', 'noop', 'failed'] as const).map((result) => ({ labels: { result }, value: src.ops.deploys[result] })),
  );
  m('bgproxy_drain_seconds', 'How long the last drain after a switch took.', 'gauge', () => [{ value: src.ops.drainSeconds }]);
  m('bgproxy_drain_cut_off_requests', 'Requests the last drain cut off at drainTimeoutMs.', 'gauge', () => [{ value: src.ops.drainCutOff }]);
  m('bgproxy_paused', 'Whether live requests are being held by bgproxy pause (1) or not (0).', 'gauge', () => [{ value: src.pause().paused ? 1 : 0 }]);
  m('bgproxy_paused_requests', 'Live requests held by a pause now.', 'gauge', () => [{ value: src.pause().waiting }]);
  m('bgproxy_paused_requests_total', 'Live requests a pause has held since serve started.', 'counter', () => [{ value: src.pause().held }]);
  m('bgproxy_app_up', "Whether each color's app process is running and healthy (1) or not (0); only when bgproxy runs the apps (app.start).", 'gauge', () =>
    COLORS.flatMap((color) => {
      const a = src.app(color);
      return a === null ? [] : [{ labels: { color }, value: a.up ? 1 : 0 }];
    }),
  );
  m('bgproxy_app_restarts_total', "Automatic restarts of each color's app after it crashed, since serve started.", 'counter', () =>
    COLORS.flatMap((color) => {
      const a = src.app(color);
      return a === null ? [] : [{ labels: { color }, value: a.restarts }];
    }),
  );
  m('bgproxy_tls_certificate_expiry_timestamp_seconds', 'When the certificate served for each TLS host name expires (Unix time).', 'gauge', () =>
    src.certificates().map((c) => ({ labels: { host: c.host }, value: Math.floor(c.notAfter.getTime() / 1000) })),
  );
  m('bgproxy_access_log_dropped_lines_total', 'Log lines (access log included) dropped because the log output could not keep up.', 'counter', () => [
    { value: src.droppedLogLines() },
  ]);
  collectDefaultMetrics({ register: registry });
  // prom-client keeps these gauges under a second, older name ending in _total, which the
  // exposition rules reserve for counters (promtool check metrics refuses them); the same
  // values stay under nodejs_active_handles, nodejs_active_requests, nodejs_active_resources.
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) registry.removeSingleMetric(name);
  return registry;
}
