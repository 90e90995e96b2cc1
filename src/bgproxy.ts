// The running bgproxy: roles, the two targets, the request handlers, and the operations
// that change which color is live. One instance per root; `serve` and embedding hosts
// both use it.
import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { type Color, type Config, COLORS, type Role, otherColor } from './config.js';
import { BgError } from './errors.js';
import { type Roles, repairRoles, writeRoles } from './layout/roles.js';
import { type Logger, silentLogger } from './log.js';
import { nginxCutover } from './nginx/cutover.js';
import { Forwarder } from './proxy/forward.js';
import { createHandlers, type Handlers } from './proxy/proxy-server.js';
import { Router } from './proxy/router.js';
import { Target } from './proxy/target.js';
import { type DeployHost, type DeployOptions, type DeployProgress, type DeployResult, deploy } from './deploy/deploy.js';
import { appendHistory } from './deploy/history.js';
import { acquireLock } from './deploy/lock.js';
import { readRelease } from './deploy/release.js';
import type { AppState } from './supervisor/app-process.js';
import { checkHealth } from './supervisor/health-check.js';
import { hasRelease, Supervisor } from './supervisor/supervisor.js';

export interface BgproxyOptions {
  config: Readonly<Config>;
  logger?: Logger;
  /** One log line per request; default true. */
  accessLog?: boolean;
}

export interface CutoverOptions {
  /** Skip the health check of the color that becomes live. */
  force?: boolean;
}

export interface CutoverResult {
  live: Color;
  was: Color;
  /** Requests that were in flight on the old live color when it stopped being live. */
  inflightAtSwitch: number;
  /** Of those, how many were still running when drainTimeoutMs passed. */
  cutOff: number;
  drainMs: number;
  totalMs: number;
  /** nginx mode: how long each nginx step took (old workers: time until they exited). */
  nginx?: { switchedMs: number; testMs: number; reloadMs: number; verifyMs: number; oldWorkersMs: number | null };
}

export interface ColorStatus {
  port: number;
  commit: string | null;
  pid: number | null;
  state: string;
  healthy: boolean;
  inflight: number;
  served: number;
  websockets: number;
  reason?: string | null;
  [key: string]: unknown;
}

export interface Status {
  live: Color;
  next: Color;
  mode: Config['mode'];
  listen: string | null;
  root: string;
  pid: number;
  colors: Record<Color, ColorStatus>;
}

/** Events: 'cutover' (CutoverResult before the drain), 'drained' (CutoverResult), 'repair' (message). */
export class Bgproxy extends EventEmitter {
  readonly config: Readonly<Config>;
  readonly log: Logger;
  #roles: Readonly<Roles>;
  readonly #targets: Record<Color, Target>;
  readonly #forwarder: Forwarder;
  readonly #handlers: Handlers;
  /** The live color before the last cutover, for rollback. */
  #previousLive: Color | null = null;
  listenAddress: string | null = null;
  /** Present when app.start is configured: bgproxy owns both colors' processes. */
  readonly supervisor: Supervisor | null;
  /** Why a color must not go live (its last deploy failed), until a deploy succeeds. */
  readonly #failed: Record<Color, string | null> = { blue: null, green: null };

  constructor(opts: BgproxyOptions) {
    super();
    this.config = opts.config;
    this.log = opts.logger ?? silentLogger();
    const repair = repairRoles(this.config.root);
    if (repair.repaired) this.log.warn({ event: 'repair', detail: repair.repaired }, `roles repaired: ${repair.repaired}`);
    this.#roles = Object.freeze(repair.roles);
    const idle = Math.min(4000, this.config.timeouts.keepAliveMs);
    this.#targets = {
      blue: new Target('blue', this.config.colors.blue.port, idle),
      green: new Target('green', this.config.colors.green.port, idle),
    };
    this.#forwarder = new Forwarder({
      upstreamTimeoutMs: this.config.upstreamTimeoutMs,
      holdMs: this.config.holdMs,
      retryBodyMax: 64 * 1024,
      logger: this.log.child({ component: 'proxy' }),
    });
    this.supervisor = this.config.app.start
      ? new Supervisor(this.config, this.log, (color, state) => this.#onAppState(color, state))
      : null;
    const table = { targetFor: (role: Role): Target => this.#targets[this.#roles[role]] };
    this.#handlers = createHandlers({
      router: new Router(this.config.hosts, this.config.unknownHost),
      table,
      forwarder: this.#forwarder,
      trustProxy: this.config.trustProxy,
      logger: this.log,
      accessLog: opts.accessLog ?? true,
    });
  }

  get roles(): Readonly<Roles> {
    return this.#roles;
  }

  target(color: Color): Target {
    return this.#targets[color];
  }

  /** Request handler for an http.Server ('request' event). */
  readonly handleRequest = (req: IncomingMessage, res: ServerResponse): void => this.#handlers.request(req, res);
  /** Upgrade handler for an http.Server ('upgrade' event). */
  readonly handleUpgrade = (req: IncomingMessage, socket: Socket, head: Buffer): void =>
    this.#handlers.upgrade(req, socket, head);

  /**
   * Runs `fn` holding the root's lock (ROOT/run/lock): one deploy, cutover or rollback at
   * a time per root, across processes; a second one is refused with BG_LOCKED at once.
   */
  protected async locked<T>(action: string, fn: () => Promise<T>): Promise<T> {
    const lock = await acquireLock(this.config.root, action);
    try {
      return await fn();
    } finally {
      await lock.release();
    }
  }

  /** Makes next live and live next, after checking next is healthy; waits for the drain. */
  cutover(opts: CutoverOptions = {}): Promise<CutoverResult> {
    return this.locked('cutover', () => this.#recorded('cutover', () => this.#switchTo(this.#roles.next, opts)));
  }

  /** Makes the previous live color live again (a cutover back, with the same checks). */
  rollback(opts: CutoverOptions = {}): Promise<CutoverResult> {
    return this.locked('rollback', () =>
      this.#recorded('rollback', async () => {
        const back = this.#previousLive ?? this.#roles.next;
        if (back === this.#roles.live) throw new BgError('BG_STATE', `${back} is already live; nothing to roll back`);
        return this.#switchTo(back, opts);
      }),
    );
  }

  /** Deploys a commit into the next color (see deploy/deploy.ts); with cutover, makes it live once healthy. */
  deploy(opts: DeployOptions & { cutover?: boolean } = {}, onProgress?: (p: DeployProgress) => void): Promise<DeployResult & { cutover?: CutoverResult }> {
    return this.locked('deploy', async () => {
      const result = await deploy(this.#deployHost(), opts, (p) => {
        this.emit('deploy-progress', p);
        onProgress?.(p);
      });
      if (!opts.cutover) return result;
      const cut = await this.#recorded('cutover', () => this.#switchTo(result.color, {}));
      return { ...result, cutover: cut };
    });
  }

  #deployHost(): DeployHost {
    return {
      config: this.config,
      log: this.log,
      nextColor: () => this.#roles.next,
      markFailed: (color, reason) => this.markFailed(color, reason),
      isHealthy: async (color) => {
        if (this.#failed[color]) return false;
        if (this.supervisor && this.supervisor.snapshot(color)?.state !== 'running') return false;
        const h = this.config.app.health;
        return (await checkHealth(this.config.colors[color].port, h.path, h.timeoutMs)).ok;
      },
      restartForRelease: async (color) => {
        if (this.supervisor) {
          await this.restartColor(color);
          return;
        }
        // Apps started another way: bgproxy cannot restart them; it can only check.
        this.log.warn({ color }, `no app.start: restart the ${color} app yourself to run the new release`);
      },
    };
  }

  /** Appends the outcome of a cutover/rollback to ROOT/history.jsonl. */
  async #recorded(action: 'cutover' | 'rollback', fn: () => Promise<CutoverResult>): Promise<CutoverResult> {
    const t0 = performance.now();
    try {
      const r = await fn();
      const release = await readRelease(this.config.root, r.live).catch(() => null);
      await appendHistory(this.config.root, {
        action,
        color: r.live,
        commit: release?.commit ?? null,
        result: 'ok',
        durationMs: r.totalMs,
        was: r.was,
        drained: r.inflightAtSwitch,
        cutOff: r.cutOff,
      }).catch((err: Error) => this.log.warn({ err: err.message }, 'cannot write history'));
      return r;
    } catch (err) {
      await appendHistory(this.config.root, {
        action,
        color: this.#roles.next,
        result: 'failed',
        durationMs: Math.round(performance.now() - t0),
        message: (err as Error).message,
      }).catch(() => undefined);
      throw err;
    }
  }

  async #switchTo(color: Color, opts: CutoverOptions): Promise<CutoverResult> {
    const started = performance.now();
    const was = this.#roles.live;
    if (color === was) throw new BgError('BG_STATE', `${color} is already live`);
    if (!opts.force) await this.assertHealthy(color);
    if (this.config.mode === 'nginx') return this.#switchNginx(color, was, started, opts);
    // Persist first: if the links cannot be written, memory is untouched and nothing moved.
    const roles = Object.freeze(writeRoles(this.config.root, color));
    const oldLive = this.#targets[was];
    this.#roles = roles;
    const inflightAtSwitch = oldLive.inflightAs('live');
    this.#previousLive = was;
    this.log.info({ event: 'cutover', live: color, was, inflight: inflightAtSwitch }, `live: ${color} (was ${was})`);
    const early: CutoverResult = { live: color, was, inflightAtSwitch, cutOff: 0, drainMs: 0, totalMs: 0 };
    this.emit('cutover', early);
    const drainStart = performance.now();
    const cutOff = await oldLive.drain(this.config.drainTimeoutMs, 'live');
    const result: CutoverResult = {
      ...early,
      cutOff,
      drainMs: Math.round(performance.now() - drainStart),
      totalMs: Math.round(performance.now() - started),
    };
    this.log.info({ event: 'drained', color: was, ...result }, `drained ${was}: ${inflightAtSwitch} requests in ${result.drainMs} ms`);
    this.emit('drained', result);
    return result;
  }

  #onAppState(color: Color, state: AppState): void {
    // A color stopped on purpose or unable to start answers 502 at once; one that is
    // starting, crashed or in backoff is worth holding requests for.
    this.#targets[color].holdable = state !== 'stopped' && state !== 'failed';
    this.emit('app-state', { color, state });
  }

  /** Marks `color` as not fit to go live (a failed deploy), or clears the mark. */
  markFailed(color: Color, reason: string | null): void {
    this.#failed[color] = reason;
  }

  failure(color: Color): string | null {
    return this.#failed[color];
  }

  /** Starts the app of every color that holds a release (serve calls this after listening). */
  async startApps(): Promise<void> {
    if (!this.supervisor) return;
    await Promise.all(
      COLORS.filter((c) => hasRelease(this.config.root, c)).map((c) =>
        this.startColor(c).catch((err: Error) => this.log.error({ color: c, err: err.message }, `${c} did not start`)),
      ),
    );
  }

  #requireSupervisor(): Supervisor {
    if (!this.supervisor) {
      throw new BgError('BG_STATE', 'bgproxy does not run the apps here (no app.start in bgproxy.json)');
    }
    return this.supervisor;
  }

  /** Starts (or restarts, undrained) `color`'s app and resolves when it is healthy. */
  async startColor(color: Color): Promise<void> {
    const sup = this.#requireSupervisor();
    const release = await readRelease(this.config.root, color).catch(() => null);
    await sup.start(color, { commit: release?.commit ?? null, role: this.roleOf(color) });
  }

  /**
   * Stops `color`'s app the drained way: wait for its in-flight requests (drainTimeoutMs),
   * then stopSignal, then SIGKILL to the group after stopTimeoutMs.
   */
  async stopColor(color: Color, opts: { force?: boolean } = {}): Promise<{ cutOff: number; killed: boolean; drainMs: number }> {
    const sup = this.#requireSupervisor();
    if (this.#roles.live === color && !opts.force) {
      throw new BgError(
        'BG_STATE',
        `${color} is live: stopping it takes the public site down (requests wait ${this.config.holdMs} ms, then get 502); cut over first, or use --force`,
      );
    }
    const target = this.#targets[color];
    target.holdable = false;
    const t0 = performance.now();
    const cutOff = await target.drain(this.config.drainTimeoutMs);
    const drainMs = Math.round(performance.now() - t0);
    const { killed } = await sup.stop(color);
    target.closeWebsockets();
    return { cutOff, killed, drainMs };
  }

  /** Drains `color`, stops its app and starts it again; requests meanwhile are held. */
  async restartColor(color: Color): Promise<{ cutOff: number; drainMs: number }> {
    const sup = this.#requireSupervisor();
    const target = this.#targets[color];
    const t0 = performance.now();
    const cutOff = await target.drain(this.config.drainTimeoutMs);
    const drainMs = Math.round(performance.now() - t0);
    await sup.stop(color);
    target.closeWebsockets();
    await this.startColor(color);
    return { cutOff, drainMs };
  }

  /** nginx mode: nginx routes, so the switch is links + nginx -t + reload + verify (with restore). */
  async #switchNginx(color: Color, was: Color, started: number, opts: CutoverOptions): Promise<CutoverResult> {
    const r = await nginxCutover(this.config, { force: opts.force === true, logger: this.log });
    this.#roles = Object.freeze({ live: r.live, next: r.was });
    this.#previousLive = was;
    const result: CutoverResult = {
      live: color,
      was,
      inflightAtSwitch: 0,
      cutOff: r.oldWorkersLeft,
      drainMs: r.oldWorkersMs ?? 0,
      totalMs: Math.round(performance.now() - started),
      nginx: { switchedMs: r.switchedMs, testMs: r.testMs, reloadMs: r.reloadMs, verifyMs: r.verifyMs, oldWorkersMs: r.oldWorkersMs },
    };
    this.emit('cutover', result);
    this.emit('drained', result);
    return result;
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
    const h = this.config.app.health;
    const r = await checkHealth(this.config.colors[color].port, h.path, Math.min(h.timeoutMs, 5000));
    if (!r.ok) {
      throw new BgError(
        'BG_UNHEALTHY',
        `${color} is not healthy (GET ${h.path} on port ${this.config.colors[color].port}: ${r.reason}); refusing to make it live (--force skips this check)`,
      );
    }
  }

  async status(): Promise<Status> {
    const colors = {} as Record<Color, ColorStatus>;
    await Promise.all(
      COLORS.map(async (c) => {
        colors[c] = await this.colorStatus(c);
      }),
    );
    return {
      live: this.#roles.live,
      next: this.#roles.next,
      mode: this.config.mode,
      listen: this.listenAddress,
      root: this.config.root,
      pid: process.pid,
      colors,
    };
  }

  protected async colorStatus(color: Color): Promise<ColorStatus> {
    const t = this.#targets[color];
    const release = await readRelease(this.config.root, color).catch(() => null);
    const counts = { inflight: t.inflight, served: t.served, errors5xx: t.errors5xx, websockets: t.websockets };
    const base = { port: t.port, commit: release?.commit ?? null, subject: release?.subject ?? null, release };
    const failed = this.#failed[color];
    const snap = this.supervisor?.snapshot(color);
    if (this.supervisor) {
      const s = snap ?? { state: 'stopped', pid: null, uptimeMs: null, restarts: 0, lastExit: null, healthy: false, reason: null };
      return { ...base, ...s, ...(failed ? { state: 'failed', healthy: false, reason: failed } : {}), ...counts };
    }
    // Apps started another way: all we know is whether the port answers.
    const h = this.config.app.health;
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

  /** Waits for in-flight requests on both colors (bounded), stops the apps, drops the pools. */
  async close(timeoutMs = this.config.drainTimeoutMs): Promise<void> {
    await Promise.all(COLORS.map((c) => this.#targets[c].drain(timeoutMs)));
    for (const c of COLORS) this.#targets[c].closeWebsockets();
    // The proxy has stopped accepting: stop the apps the same drained way.
    await this.supervisor?.stopAll();
    for (const c of COLORS) this.#targets[c].close();
    this.#forwarder.close();
  }

  roleOf(color: Color): Role {
    return this.#roles.live === color ? 'live' : 'next';
  }

  otherColor(color: Color): Color {
    return otherColor(color);
  }
}
