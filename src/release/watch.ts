// The post-cutover watch: for watchMs after a switch, the new live color's 5xx rate and
// health are compared with the level before the switch. When it does worse, the watch
// trips once and its owner (Bgproxy) rolls back. The watch only judges; it moves nothing.
import type { Color } from '../config.js';

export interface WatchCounts {
  served: number;
  errors5xx: number;
}

export interface WatchProbe {
  /** The new live color's cumulative counters (the watch subtracts those at the switch). */
  counts(): WatchCounts;
  /** One health look: a reason when it counts as unhealthy now, else null. */
  health(): Promise<string | null>;
  /** How often to call health(). */
  healthEveryMs: number;
  /** Consecutive unhealthy looks that trip the watch. */
  unhealthyAfter: number;
}

export interface WatchSettings {
  watchMs: number;
  maxErrorRate: number;
  minRequests: number;
}

export interface WatchBaseline {
  /** The old live color's 5xx rate as of the switch (0 when it had served nothing). */
  errorRate: number;
  /** Whether the new live color was healthy at the switch (a forced cutover may say no). */
  healthy: boolean;
}

export type WatchState = 'watching' | 'passed' | 'tripped' | 'stopped';

export interface WatchStatus {
  color: Color;
  was: Color;
  state: WatchState;
  startedAt: string;
  until: string;
  watchMs: number;
  /** Requests the new live color answered since the switch, and how many were 5xx. */
  requests: number;
  errors5xx: number;
  errorRate: number;
  /** The rate above which it trips: max(maxErrorRate, the rate before the switch). */
  threshold: number;
  baselineRate: number;
  /** Why it tripped or stopped. */
  reason?: string;
  endedAt?: string;
}

/** How often the counters are judged: often enough that a bad release is caught within a beat. */
const POLL_MS = 100;

export class ReleaseWatch {
  readonly #probe: WatchProbe;
  readonly #settings: WatchSettings;
  readonly #baseline: WatchBaseline;
  readonly #start: WatchCounts;
  readonly #onEnd: (status: WatchStatus) => void;
  readonly #timers: NodeJS.Timeout[] = [];
  #status: WatchStatus;
  #failedLooks = 0;
  #looking = false;

  constructor(
    colors: { color: Color; was: Color },
    probe: WatchProbe,
    settings: WatchSettings,
    baseline: WatchBaseline,
    /** Called once when the watch ends: passed, tripped (the owner rolls back) or stopped. */
    onEnd: (status: WatchStatus) => void,
  ) {
    this.#probe = probe;
    this.#settings = settings;
    this.#baseline = baseline;
    this.#start = probe.counts();
    this.#onEnd = onEnd;
    const now = Date.now();
    this.#status = {
      ...colors,
      state: 'watching',
      startedAt: new Date(now).toISOString(),
      until: new Date(now + settings.watchMs).toISOString(),
      watchMs: settings.watchMs,
      requests: 0,
      errors5xx: 0,
      errorRate: 0,
      threshold: Math.max(settings.maxErrorRate, baseline.errorRate),
      baselineRate: baseline.errorRate,
    };
  }

  /** Starts judging; timers are unref'd so a watch never keeps a process alive. */
  start(): this {
    const every = (ms: number, fn: () => void): void => {
      this.#timers.push(setInterval(fn, ms).unref());
    };
    every(POLL_MS, () => this.#judgeRate());
    if (this.#baseline.healthy) every(this.#probe.healthEveryMs, () => void this.#lookAtHealth());
    this.#timers.push(setTimeout(() => this.#end('passed'), this.#settings.watchMs).unref());
    return this;
  }

  get active(): boolean {
    return this.#status.state === 'watching';
  }

  status(): WatchStatus {
    if (this.active) this.#count();
    return { ...this.#status };
  }

  /** Ends the watch without a verdict (another operation took over, or shutdown). */
  stop(reason: string): void {
    this.#end('stopped', reason);
  }

  #count(): void {
    const now = this.#probe.counts();
    const requests = now.served - this.#start.served;
    const errors5xx = now.errors5xx - this.#start.errors5xx;
    this.#status.requests = requests;
    this.#status.errors5xx = errors5xx;
    this.#status.errorRate = requests > 0 ? errors5xx / requests : 0;
  }

  #judgeRate(): void {
    if (!this.active) return;
    this.#count();
    const s = this.#status;
    if (s.requests < this.#settings.minRequests || s.errorRate <= s.threshold) return;
    this.#trip(
      `5xx rate ${pct(s.errorRate)} (${s.errors5xx} of ${s.requests} requests) above ${pct(s.threshold)}` +
        ` (before the switch: ${pct(this.#baseline.errorRate)})`,
    );
  }

  async #lookAtHealth(): Promise<void> {
    if (!this.active || this.#looking) return;
    this.#looking = true;
    try {
      const why = await this.#probe.health();
      this.#failedLooks = why === null ? 0 : this.#failedLooks + 1;
      if (why !== null && this.#failedLooks >= this.#probe.unhealthyAfter && this.active) {
        this.#trip(`${this.#status.color} turned unhealthy (${why})`);
      }
    } finally {
      this.#looking = false;
    }
  }

  #trip(reason: string): void {
    this.#end('tripped', reason);
  }

  #end(state: Exclude<WatchState, 'watching'>, reason?: string): void {
    if (!this.active) return;
    this.#count();
    for (const t of this.#timers) clearTimeout(t);
    this.#status.state = state;
    this.#status.endedAt = new Date().toISOString();
    if (reason !== undefined) this.#status.reason = reason;
    this.#onEnd({ ...this.#status });
  }
}

function pct(rate: number): string {
  return `${Math.round(rate * 1000) / 10}%`;
}

/** One line for people: "watching green until 12:04:05Z: 0 of 340 requests 5xx". */
export function formatWatch(w: WatchStatus): string {
  const until = `${w.until.slice(11, 19)}Z`;
  const counts = `${w.errors5xx} of ${w.requests} requests 5xx`;
  switch (w.state) {
    case 'watching':
      return `watching ${w.color} until ${until} (${Math.round(w.watchMs / 1000)}s; rolls back above ${pct(w.threshold)} 5xx or when unhealthy): ${counts}`;
    case 'passed':
      return `watch of ${w.color} passed (${counts})`;
    case 'tripped':
      return `watch of ${w.color} tripped: ${w.reason}`;
    default:
      return `watch of ${w.color} stopped: ${w.reason ?? 'stopped'}`;
  }
}
