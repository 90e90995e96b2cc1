// The post-cutover watch as bgproxy runs it: when to watch, the level before the switch,
// the ReleaseWatch itself, and what happens when it trips (an automatic rollback, timed
// and reported in status).
import type { Color, ConfigSource } from '../config.js';
import { BgError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Target } from '../proxy/target.js';
import type { Supervisor } from '../supervisor/supervisor.js';
import type { CutoverOptions, CutoverResult, WatchReport } from '../types.js';
import { colorProbe } from './probe.js';
import type { ReleaseAction } from './report.js';
import { formatWatch, ReleaseWatch, type WatchStatus } from './watch.js';

export interface WatchHost {
  config: ConfigSource;
  log: Logger;
  emit(event: string, data: unknown): void;
  target(color: Color): Target;
  supervisor: Supervisor | null;
  /** The rollback itself (locked, drained); rejects when it must not or cannot happen. */
  rollback(color: Color, was: Color, reason: string): Promise<CutoverResult>;
  /** Calls fn at the next drain (the end of a switch); returns the unsubscribe. */
  onDrained(fn: () => void): () => void;
}

export interface Baseline {
  errorRate: number;
  healthy: boolean;
}

export class WatchKeeper {
  readonly #host: WatchHost;
  #watch: ReleaseWatch | null = null;
  #rollback: WatchReport['rollback'] | undefined;

  constructor(host: WatchHost) {
    this.#host = host;
  }

  /** How long to watch after this switch: cutovers only, proxy mode only (nginx keeps the counters). */
  msFor(action: ReleaseAction, opts: CutoverOptions): number {
    if (action !== 'cutover') return 0;
    const config = this.#host.config();
    const ms = opts.watchMs ?? config.watch.watchMs;
    if (ms > 0 && config.mode === 'nginx') {
      if (opts.watchMs !== undefined) {
        throw new BgError('BG_USAGE', 'the post-cutover watch needs proxy mode: in nginx mode bgproxy does not see the requests');
      }
      return 0;
    }
    return ms;
  }

  /** The level before the switch: the live color's 5xx rate, and whether `color` is healthy now. */
  baseline(color: Color, live: Color, opts: CutoverOptions): Baseline {
    const old = this.#host.target(live);
    const healthy = !opts.force || this.#host.supervisor?.snapshot(color)?.state === 'running';
    return { errorRate: old.served > 0 ? old.errors5xx / old.served : 0, healthy };
  }

  start(color: Color, was: Color, watchMs: number, baseline: Baseline): WatchStatus {
    const { log } = this.#host;
    const config = this.#host.config();
    const switchedAt = performance.now();
    this.#rollback = undefined;
    const probe = colorProbe(config, color, this.#host.target(color), this.#host.supervisor);
    const watch = new ReleaseWatch({ color, was }, probe, { ...config.watch, watchMs }, baseline, (s) => {
      log[s.state === 'tripped' ? 'warn' : 'info']({ event: 'watch-end', ...s }, formatWatch(s));
      this.#host.emit('watch', s);
      if (s.state === 'tripped') void this.#trip(s, switchedAt);
    });
    this.#watch = watch.start();
    const s = watch.status();
    log.info({ event: 'watch', ...s }, formatWatch(s));
    this.#host.emit('watch', s);
    return s;
  }

  stop(reason: string): void {
    this.#watch?.stop(reason);
  }

  /** The current or last watch, with the rollback it caused. */
  report(): WatchReport | null {
    if (!this.#watch) return null;
    return { ...this.#watch.status(), ...(this.#rollback ? { rollback: this.#rollback } : {}) };
  }

  async #trip(tripped: WatchStatus, switchedAt: number): Promise<void> {
    const { color, was } = tripped;
    const { log } = this.#host;
    const reason = tripped.reason ?? 'the watch tripped';
    // Timed to when traffic is back and the bad color drained, before the bookkeeping.
    let drainedAt = 0;
    const off = this.#host.onDrained(() => {
      drainedAt ||= performance.now();
    });
    const sinceCutover = (): number => Math.round((drainedAt || performance.now()) - switchedAt);
    try {
      const back = await this.#host.rollback(color, was, reason);
      this.#rollback = {
        ok: true,
        live: was,
        msSinceCutover: sinceCutover(),
        switchMs: back.totalMs,
        drainMs: back.drainMs,
      };
      log.warn({ event: 'auto-rollback', color: was, from: color, reason, ...this.#rollback }, `rolled back to ${was} because ${reason}`);
    } catch (err) {
      const error = (err as Error).message;
      this.#rollback = { ok: false, live: color, msSinceCutover: sinceCutover(), error };
      log.error({ event: 'auto-rollback-failed', color, reason, err: error }, `automatic rollback from ${color} failed: ${error}`);
    } finally {
      off();
    }
    this.#host.emit('auto-rollback', this.report());
  }
}
