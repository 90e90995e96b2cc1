// The traffic controls of one running bgproxy: the four gates (access, maintenance, pause,
// canary, asked in that order) and the operations that change them, each recorded in
// ROOT/history.jsonl. Maintenance and the canary are persisted in ROOT/traffic.json and come
// back after a restart of serve; a pause does not (a restart resumes).
import { randomBytes } from 'node:crypto';
import type { Color, Config } from '../config.js';
import { appendHistory } from '../deploy/history.js';
import { BgError } from '../errors.js';
import type { Roles } from '../layout/roles.js';
import type { Logger } from '../log.js';
import type { Gate } from '../proxy/gate.js';
import type { Target } from '../proxy/target.js';
import { colorProbe } from '../release/probe.js';
import { formatWatch, ReleaseWatch, type WatchStatus } from '../release/watch.js';
import type { Supervisor } from '../supervisor/supervisor.js';
import { plural } from '../words.js';
import { AccessGate } from './access.js';
import { plainAddress } from './address.js';
import { BUCKETS, CanaryGate } from './canary.js';
import { MaintenanceGate, maintenancePage } from './maintenance.js';
import { PauseGate, type PauseInfo } from './pause.js';
import { type CanaryState, readTrafficState, type TrafficState, writeTrafficState } from './state.js';

export interface TrafficHost {
  config(): Readonly<Config>;
  log: Logger;
  roles(): Readonly<Roles>;
  target(color: Color): Target;
  supervisor: Supervisor | null;
  markFailed(color: Color, reason: string): void;
}

export interface CanaryStatus {
  color: Color;
  /** Share of live-host requests sent to `color`, in percent. */
  percent: number;
  since: string;
  /** Requests each color answered since the canary began (or since serve started), and their 5xx. */
  colors: Record<Color, { requests: number; errors5xx: number; errorRate: number }>;
  watch: WatchStatus | null;
}

export interface TrafficStatus {
  /** The access rules in force, without secrets. */
  access: Record<'live' | 'next', { allow: string[] | null; basicAuthUser: string | null } | null>;
  pause: PauseInfo | null;
  maintenance: { retryAfterS: number; since: string; page: 'custom' | 'built-in' } | null;
  canary: CanaryStatus | null;
  /** The last canary that ended, and why. */
  lastCanary: { color: Color; percent: number; ended: string; how: string } | null;
}

export function percentOf(share: number): number {
  return share / (BUCKETS / 100);
}

export class TrafficControls {
  readonly #host: TrafficHost;
  readonly #access: AccessGate;
  readonly #maintenance = new MaintenanceGate();
  readonly #pause: PauseGate;
  readonly #canary: CanaryGate;
  #state: TrafficState;
  #customPage = false;
  #canaryStart: Record<Color, { served: number; errors5xx: number }> | null = null;
  #canaryWatch: ReleaseWatch | null = null;
  #lastCanary: TrafficStatus['lastCanary'] = null;

  constructor(host: TrafficHost) {
    this.#host = host;
    const config = host.config();
    this.#access = new AccessGate(config);
    this.#pause = new PauseGate(config.limits.pausedRequests);
    this.#canary = new CanaryGate(trustedSet(config));
    const { state, problem } = readTrafficState(config.root);
    if (problem) host.log.error({ event: 'traffic-state', problem }, problem);
    this.#state = state;
    if (state.maintenance) this.#maintenanceOn(state.maintenance.retryAfterS);
    if (state.canary) this.#restoreCanary(state.canary);
  }

  /** In the order the handlers ask them. */
  get gates(): readonly Gate[] {
    return [this.#access, this.#maintenance, this.#pause, this.#canary];
  }

  /** A config reload: access rules, trustProxy and limits.pausedRequests apply from now on. */
  configure(config: Readonly<Config>): void {
    this.#access.configure(config);
    this.#pause.setLimit(config.limits.pausedRequests);
    this.#canary.setTrusted(trustedSet(config));
  }

  #proxyOnly(what: string): void {
    if (this.#host.config().mode === 'nginx') {
      throw new BgError('BG_USAGE', `${what} needs proxy mode: in nginx mode nginx answers the requests, not bgproxy`);
    }
  }

  async #record(action: string, color: Color, extra: Record<string, unknown> = {}): Promise<void> {
    await appendHistory(this.#host.config().root, { action, color, result: 'ok', durationMs: 0, ...extra }).catch((err: Error) =>
      this.#host.log.error({ event: 'history', err: err.message }, `cannot write history: ${err.message}`),
    );
  }

  #persist(next: TrafficState): void {
    // Disk first: if it cannot be written, nothing changed.
    writeTrafficState(this.#host.config().root, next);
    this.#state = next;
  }

  // --- pause -------------------------------------------------------------------------

  /**
   * Holds new live-host requests, then waits (up to drainTimeoutMs) until the requests
   * already in flight as live have finished, on both colors (a canary sends live requests to
   * next too). Resolves with how many were still running when it stopped waiting.
   */
  async pause(timeoutMs: number): Promise<{ timeoutMs: number; inflightLeft: number; drainMs: number }> {
    this.#proxyOnly('pause');
    const live = this.#host.roles().live;
    this.#pause.pause(timeoutMs);
    this.#host.log.info({ event: 'pause', timeoutMs }, `paused: live requests wait up to ${timeoutMs} ms`);
    await this.#record('pause', live, { timeoutMs });
    const t0 = performance.now();
    const drainMs = this.#host.config().drainTimeoutMs;
    const left = await Promise.all((['blue', 'green'] as const).map((c) => this.#host.target(c).drain(drainMs, 'live')));
    return { timeoutMs, inflightLeft: left[0]! + left[1]!, drainMs: Math.round(performance.now() - t0) };
  }

  resume(): { released: number; pausedMs: number; timedOut: number; refused: number } {
    this.#proxyOnly('resume');
    const info = this.#pause.info();
    if (info === null) throw new BgError('BG_STATE', 'not paused');
    const released = this.#pause.resume();
    const pausedMs = Date.now() - Date.parse(info.since);
    this.#host.log.info({ event: 'resume', released, pausedMs }, `resumed: ${plural(released, 'waiting request goes', 'waiting requests go')} on`);
    void this.#record('resume', this.#host.roles().live, { released, pausedMs, timedOut: info.timedOut, refused: info.refused });
    return { released, pausedMs, timedOut: info.timedOut, refused: info.refused };
  }

  // --- maintenance ---------------------------------------------------------------------

  #maintenanceOn(retryAfterS: number): void {
    const page = maintenancePage(this.#host.config().root);
    this.#customPage = page.custom;
    this.#maintenance.on(page.body, retryAfterS);
  }

  /** Turns maintenance on (again: re-reads ROOT/maintenance.html) or off; persisted first. */
  async maintenance(on: boolean, retryAfterS = 120): Promise<TrafficStatus['maintenance']> {
    this.#proxyOnly('maintenance');
    const live = this.#host.roles().live;
    if (!on) {
      if (this.#state.maintenance === null) return null;
      this.#persist({ ...this.#state, maintenance: null });
      this.#maintenance.off();
      this.#host.log.info({ event: 'maintenance', on: false }, 'maintenance off');
      await this.#record('maintenance-off', live);
      return null;
    }
    const since = this.#state.maintenance?.since ?? new Date().toISOString();
    this.#persist({ ...this.#state, maintenance: { retryAfterS, since } });
    this.#maintenanceOn(retryAfterS);
    this.#host.log.info({ event: 'maintenance', on: true, retryAfterS }, 'maintenance on');
    await this.#record('maintenance-on', live, { retryAfterS, page: this.#customPage ? 'custom' : 'built-in' });
    return this.status().maintenance;
  }

  // --- canary --------------------------------------------------------------------------

  get canaryColor(): Color | null {
    return this.#canary.state?.color ?? null;
  }

  #restoreCanary(c: CanaryState): void {
    const roles = this.#host.roles();
    if (c.color !== roles.next || this.#host.config().mode !== 'proxy') {
      // The roles moved under it (by hand, or in nginx mode): it no longer means anything.
      this.#host.log.warn({ event: 'canary-dropped', color: c.color }, `canary to ${c.color} dropped at start: ${c.color} is not the next color`);
      this.#persist({ ...this.#state, canary: null });
      return;
    }
    this.#setCanary(c);
    this.#host.log.info({ event: 'canary', ...c }, `canary restored: ${percentOf(c.share)}% of live traffic to ${c.color}`);
  }

  #setCanary(c: CanaryState | null): void {
    this.#canary.set(c);
    this.#canaryStart = c === null ? null : { blue: counts(this.#host.target('blue')), green: counts(this.#host.target('green')) };
  }

  /**
   * Sends `share` (hundredths of a percent, 1..9999) of live-host traffic to the next color,
   * sticky per client; again while one runs, changes the share (clients keep their bucket).
   * The caller holds the lock and has checked that next is healthy. With watchMs, the canary
   * color's 5xx rate is watched and the canary ended when it trips.
   */
  async startCanary(share: number, watchMs: number): Promise<CanaryStatus> {
    this.#proxyOnly('a canary');
    const { live, next } = this.#host.roles();
    const running = this.#canary.state;
    const id = running?.color === next ? running.id : randomBytes(5).toString('hex');
    const c: CanaryState = { color: next, share, id, since: running?.since ?? new Date().toISOString() };
    this.#persist({ ...this.#state, canary: c });
    const fresh = running === null;
    if (fresh) this.#setCanary(c);
    else this.#canary.set(c);
    this.#host.log.info({ event: 'canary', color: next, percent: percentOf(share) }, `canary: ${percentOf(share)}% of live traffic to ${next}`);
    await this.#record('canary', next, { percent: percentOf(share), was: live });
    if (watchMs > 0) this.#watchCanary(next, live, watchMs);
    return this.status().canary!;
  }

  #watchCanary(color: Color, live: Color, watchMs: number): void {
    const host = this.#host;
    const config = host.config();
    this.#canaryWatch?.stop('a new canary share');
    const old = host.target(live);
    const baseline = { errorRate: old.served > 0 ? old.errors5xx / old.served : 0, healthy: true };
    const probe = colorProbe(config, color, host.target(color), host.supervisor);
    this.#canaryWatch = new ReleaseWatch({ color, was: live }, probe, { ...config.watch, watchMs }, baseline, (s) => {
      host.log[s.state === 'tripped' ? 'warn' : 'info']({ event: 'canary-watch-end', ...s }, formatWatch(s));
      if (s.state === 'tripped' && this.#canary.state?.color === color) void this.#abortCanary(color, s.reason ?? 'the watch tripped');
    }).start();
  }

  async #abortCanary(color: Color, reason: string): Promise<void> {
    try {
      await this.endCanary(`aborted: ${reason}`);
      this.#host.markFailed(color, `canary aborted: ${reason}`);
      await this.#record('canary-abort', color, { reason });
    } catch (err) {
      this.#host.log.error({ event: 'canary-abort-failed', err: (err as Error).message }, `cannot end the canary: ${(err as Error).message}`);
    }
  }

  /** Ends the canary: every live-host request goes to live again. Returns the canary that ran. */
  async endCanary(how: string): Promise<CanaryState | null> {
    const c = this.#canary.state;
    if (c === null) return null;
    this.#persist({ ...this.#state, canary: null });
    this.#setCanary(null);
    this.#canaryWatch?.stop(how);
    this.#lastCanary = { color: c.color, percent: percentOf(c.share), ended: new Date().toISOString(), how };
    this.#host.log.info({ event: 'canary-end', color: c.color, how }, `canary to ${c.color} ended: ${how}`);
    return c;
  }

  // --- status --------------------------------------------------------------------------

  status(): TrafficStatus {
    const config = this.#host.config();
    const rule = (r: Config['access']['live']) => (r === null ? null : { allow: r.allow, basicAuthUser: r.basicAuth?.user ?? null });
    const m = this.#state.maintenance;
    return {
      access: { live: rule(config.access.live), next: rule(config.access.next) },
      pause: this.#pause.info(),
      maintenance: m && this.#maintenance.active ? { ...m, page: this.#customPage ? 'custom' : 'built-in' } : null,
      canary: this.#canaryStatus(),
      lastCanary: this.#lastCanary,
    };
  }

  #canaryStatus(): CanaryStatus | null {
    const c = this.#canary.state;
    const start = this.#canaryStart;
    if (c === null || start === null) return null;
    const since = (color: Color) => {
      const now = counts(this.#host.target(color));
      const requests = now.served - start[color].served;
      const errors5xx = now.errors5xx - start[color].errors5xx;
      return { requests, errors5xx, errorRate: requests > 0 ? errors5xx / requests : 0 };
    };
    const w = this.#canaryWatch?.status() ?? null;
    return { color: c.color, percent: percentOf(c.share), since: c.since, colors: { blue: since('blue'), green: since('green') }, watch: w?.color === c.color ? w : null };
  }

  /** Shutdown: waiting requests go on; watches stop. */
  close(): void {
    this.#pause.close();
    this.#canaryWatch?.stop('shutting down');
  }
}

function counts(t: Target): { served: number; errors5xx: number } {
  return { served: t.served, errors5xx: t.errors5xx };
}

function trustedSet(config: Readonly<Config>): ReadonlySet<string> {
  return new Set(config.trustProxy.map(plainAddress));
}
