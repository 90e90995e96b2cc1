// The two colors as bgproxy runs them: each one's upstream Target, its app process (when
// bgproxy supervises), and whether it is fit to go live. Stopping or restarting a color
// always drains it first.
import { COLORS, type Color, type ConfigSource, type Role } from './config.js';
import { readFailedReason, writeFailedMark } from './deploy/failed-mark.js';
import { readRelease } from './deploy/release.js';
import { BgError } from './errors.js';
import type { Logger } from './log.js';
import type { Answer, Gate } from './proxy/gate.js';
import { Target } from './proxy/target.js';
import { engineClock } from './proxy/upstream.js';
import type { AppState } from './supervisor/app-process.js';
import { checkHealth } from './supervisor/health-check.js';
import { hasRelease, Supervisor } from './supervisor/supervisor.js';
import type { ColorStatus } from './types.js';

export class Colors {
  readonly #source: ConfigSource;
  readonly #log: Logger;
  readonly #targets: Record<Color, Target>;
  /** Present when app.start is configured: bgproxy owns both colors' processes. */
  readonly supervisor: Supervisor | null;
  /**
   * Why a color must not go live (its last deploy failed or never finished), until a deploy
   * succeeds. Kept in COLOR/etc/failed.json too, and read from there at start.
   */
  readonly #failed: Record<Color, string | null>;
  /**
   * The answer for requests to a supervised color whose app could not start (state
   * 'failed': its port held by another process, say): whatever answers on that port is
   * not this color's app, so nothing is forwarded there.
   */
  readonly #refusal: Record<Color, Answer | null> = { blue: null, green: null };

  constructor(source: ConfigSource, log: Logger, onAppState: (color: Color, state: AppState) => void) {
    this.#source = source;
    const config = source();
    this.#log = log;
    this.#failed = { blue: readFailedReason(config.root, 'blue'), green: readFailedReason(config.root, 'green') };
    // Idle pooled sockets are dropped well before a typical app's keep-alive timeout (gunicorn's
    // gthread worker: 2 s, not announced; some apps 1 s) so we rarely reuse one it is closing:
    // the margin covers a late timer on a busy event loop.
    const idle = config.timeouts.upstreamIdleMs;
    this.#targets = {
      blue: new Target('blue', config.colors.blue.port, idle, engineClock),
      green: new Target('green', config.colors.green.port, idle, engineClock),
    };
    this.supervisor = config.app.start
      ? new Supervisor(source, log, (color, state) => {
          // A color stopped on purpose or unable to start answers 502 at once; one that is
          // starting, crashed or in backoff is worth holding requests for.
          this.#targets[color].holdable = state !== 'stopped' && state !== 'failed';
          this.#refusal[color] =
            state === 'failed' ? { kind: 'answer', status: 502, body: `bgproxy: the ${color} app is not running\n`, close: false } : null;
          onAppState(color, state);
        })
      : null;
    // A supervised color with no release has no app that could come back: answer at once.
    if (this.supervisor) for (const c of COLORS) this.#targets[c].holdable = hasRelease(config.root, c);
  }

  target(color: Color): Target {
    return this.#targets[color];
  }

  /** A gate (see proxy/gate.ts): 502 for requests routed to a color whose app failed to start. */
  gate(colorOf: (role: Role) => Color): Gate {
    return { check: (req) => this.#refusal[colorOf(req.role)] };
  }

  /**
   * Marks `color` as not fit to go live (a failed deploy), or clears the mark, in memory
   * and on disk. `running`: a deploy is changing the color now; should this process die
   * before it finishes, the next one reads the mark as an interrupted deploy.
   */
  markFailed(color: Color, reason: string | null, opts: { running?: boolean } = {}): void {
    this.#failed[color] = reason;
    try {
      writeFailedMark(
        this.#source().root,
        color,
        reason === null ? null : { reason, at: new Date().toISOString(), ...(opts.running ? { running: true, pid: process.pid } : {}) },
      );
    } catch (err) {
      // The mark still holds in memory; only a restart of serve would forget it.
      this.#log.error({ color, err: (err as Error).message }, `cannot record ${color}'s failure on disk`);
    }
  }

  failure(color: Color): string | null {
    return this.#failed[color];
  }

  #requireSupervisor(): Supervisor {
    if (!this.supervisor) {
      throw new BgError('BG_STATE', 'bgproxy does not run the apps here (no app.start in bgproxy.json)');
    }
    return this.supervisor;
  }

  /**
   * Starts the app of every color that holds a release, except a checkout a deploy left
   * unfinished (marked failed, no release.json): that is no release, and its app could
   * be half installed.
   */
  async startApps(roleOf: (color: Color) => Role): Promise<void> {
    if (!this.supervisor) return;
    const root = this.#source().root;
    const runnable = async (c: Color): Promise<boolean> =>
      hasRelease(root, c) && (this.#failed[c] === null || (await readRelease(root, c).catch(() => null)) !== null);
    const colors: Color[] = [];
    for (const c of COLORS) {
      if (await runnable(c)) colors.push(c);
      else if (hasRelease(root, c)) {
        this.#targets[c].holdable = false;
        this.#log.warn({ color: c, reason: this.#failed[c] }, `${c} not started: ${this.#failed[c]}`);
      }
    }
    await Promise.all(
      colors.map((c) =>
        this.start(c, roleOf(c)).catch((err: Error) => this.#log.error({ color: c, err: err.message }, `${c} did not start`)),
      ),
    );
  }

  /** Starts (or restarts, undrained) `color`'s app and resolves when it is healthy. */
  async start(color: Color, role: Role): Promise<void> {
    const sup = this.#requireSupervisor();
    const release = await readRelease(this.#source().root, color).catch(() => null);
    await sup.start(color, { commit: release?.commit ?? null, role });
  }

  /**
   * Stops `color`'s app the drained way: wait for its in-flight requests (drainTimeoutMs),
   * then stopSignal, then SIGKILL to the group after stopTimeoutMs.
   */
  async stop(color: Color, opts: { live: boolean; force?: boolean }): Promise<{ cutOff: number; killed: boolean; drainMs: number }> {
    const sup = this.#requireSupervisor();
    if (opts.live && !opts.force) {
      throw new BgError(
        'BG_STATE',
        `${color} is live: stopping it takes the public site down (requests wait ${this.#source().holdMs} ms, then get 502); cut over first, or use --force`,
      );
    }
    const target = this.#targets[color];
    target.holdable = false;
    const { cutOff, drainMs } = await this.#drain(target);
    const { killed } = await sup.stop(color);
    target.closeWebsockets();
    return { cutOff, killed, drainMs };
  }

  /** Drains `color`, stops its app and starts it again; requests meanwhile are held. */
  async restart(color: Color, role: Role): Promise<{ cutOff: number; drainMs: number }> {
    const sup = this.#requireSupervisor();
    const target = this.#targets[color];
    const drained = await this.#drain(target);
    await sup.stop(color);
    target.closeWebsockets();
    await this.start(color, role);
    return drained;
  }

  async #drain(target: Target): Promise<{ cutOff: number; drainMs: number }> {
    const t0 = performance.now();
    const cutOff = await target.drain(this.#source().drainTimeoutMs);
    return { cutOff, drainMs: Math.round(performance.now() - t0) };
  }

  /** Whether `color` may be made live without a check failing (for the deploy's no-op test). */
  isHealthy(color: Color): Promise<boolean> {
    return this.assertHealthy(color).then(
      () => true,
      () => false,
    );
  }

  /** Throws BG_UNHEALTHY unless `color` is fit to go live and answers its health path now. */
  async assertHealthy(color: Color): Promise<void> {
    const failed = this.#failed[color];
    if (failed) throw new BgError('BG_UNHEALTHY', `${color} is marked failed (${failed}); deploy again before making it live`);
    const snap = this.supervisor?.snapshot(color);
    if (this.supervisor && snap?.state !== 'running') {
      const why = snap ? `${snap.state}${snap.reason ? `: ${snap.reason}` : ''}` : 'not started (no release deployed)';
      throw new BgError('BG_UNHEALTHY', `${color} is not healthy (${why}); refusing to make it live (--force skips this check)`);
    }
    const h = this.#source().app.health;
    const port = this.#source().colors[color].port;
    const r = await checkHealth(port, h.path, Math.min(h.timeoutMs, 5000));
    if (!r.ok) {
      throw new BgError(
        'BG_UNHEALTHY',
        `${color} is not healthy (GET ${h.path} on port ${port}: ${r.reason}); refusing to make it live (--force skips this check)`,
      );
    }
  }

  async status(color: Color): Promise<ColorStatus> {
    const t = this.#targets[color];
    const release = await readRelease(this.#source().root, color).catch(() => null);
    const counts = { inflight: t.inflight, served: t.served, errors5xx: t.errors5xx, websockets: t.websockets };
    const base = { port: t.port, commit: release?.commit ?? null, subject: release?.subject ?? null, release };
    const failed = this.#failed[color];
    if (this.supervisor) {
      const s = this.supervisor.snapshot(color) ?? {
        state: 'stopped',
        pid: null,
        uptimeMs: null,
        restarts: 0,
        lastExit: null,
        healthy: false,
        reason: null,
      };
      return { ...base, ...s, ...(failed ? { state: 'failed', healthy: false, reason: failed } : {}), ...counts };
    }
    // Apps started another way: all we know is whether the port answers.
    const h = this.#source().app.health;
    const probe = await checkHealth(t.port, h.path, Math.min(h.timeoutMs, 1000));
    return {
      ...base,
      pid: null,
      state: failed ? 'failed' : probe.ok ? 'running' : 'down',
      healthy: probe.ok && !failed,
      reason: failed ?? (probe.ok ? null : (probe.reason ?? null)),
      ...counts,
    };
  }

  /** Waits (bounded) for what both colors serve, then stops the apps drained and drops the pools. */
  async close(timeoutMs: number): Promise<void> {
    await Promise.all(COLORS.map((c) => this.#targets[c].drain(timeoutMs)));
    for (const c of COLORS) this.#targets[c].closeWebsockets();
    await this.supervisor?.stopAll();
    for (const c of COLORS) this.#targets[c].close();
  }
}
