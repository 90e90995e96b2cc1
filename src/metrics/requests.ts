// The per-request half of the metrics: every request is counted by role, color and status,
// and its duration falls into a histogram bucket, in plain typed arrays indexed by number.
// Nothing here allocates or looks anything up by string: prom-client's label children
// hash their label values on each call, and the request path is the proxy's hot path.
// The registry (registry.ts) turns the arrays into Prometheus series at scrape time.
import type { Color, Role } from '../config.js';

/** The role label: the route by Host, or "other" for a request refused before it had one. */
export const METRIC_ROLES = ['live', 'next', 'other'] as const;
/** The color label: the color that answered, or "none" when bgproxy answered itself. */
export const METRIC_COLORS = ['blue', 'green', 'none'] as const;

/**
 * Upper bounds (seconds) of bgproxy_request_duration_seconds: OpenTelemetry's advisory
 * buckets for http.server.request.duration (Prometheus's defaults plus 75 ms, 750 ms and 7.5 s).
 */
export const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10] as const;

/** Status codes are three digits (llhttp takes 100..999); 0 is a request never answered. */
export const STATUSES = 1000;
const SERIES = METRIC_ROLES.length * METRIC_COLORS.length;
/** Per series: one count per bucket, then the +Inf bucket (not cumulative: summed at scrape). */
export const BUCKET_SLOTS = DURATION_BUCKETS.length + 1;

function roleIndex(role: Role | null): number {
  return role === 'live' ? 0 : role === 'next' ? 1 : 2;
}

function colorIndex(color: Color | null): number {
  return color === 'blue' ? 0 : color === 'green' ? 1 : 2;
}

export class RequestCounts {
  /** [series * STATUSES + status]: requests answered with that status (series = role * 3 + color). */
  readonly counts = new Float64Array(SERIES * STATUSES);
  /** [series * BUCKET_SLOTS + bucket]: requests whose duration fell in that bucket. */
  readonly buckets = new Float64Array(SERIES * BUCKET_SLOTS);
  /** [series]: the sum of the durations, in seconds. */
  readonly sums = new Float64Array(SERIES);

  /** One request over: its route (null: none), the color that answered (null: bgproxy), its status, its time. */
  request(role: Role | null, color: Color | null, status: number, seconds: number): void {
    const series = roleIndex(role) * 3 + colorIndex(color);
    this.counts[series * STATUSES + (status >= 0 && status < STATUSES ? status : 0)]!++;
    let b = 0;
    while (b < DURATION_BUCKETS.length && seconds > DURATION_BUCKETS[b]!) b++;
    this.buckets[series * BUCKET_SLOTS + b]!++;
    this.sums[series]! += seconds;
  }

  /** An upgrade (websocket): counted by its status; its duration is the connection's life, not a request's. */
  upgrade(role: Role | null, color: Color | null, status: number): void {
    const series = roleIndex(role) * 3 + colorIndex(color);
    this.counts[series * STATUSES + (status >= 0 && status < STATUSES ? status : 0)]!++;
  }
}
