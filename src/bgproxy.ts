// The running bgproxy: the state (roles, the last release, the deploy running), the parts
// (colors, traffic controls, watch, TLS, request handlers) and their wiring, reload included.
// Each operation (deploy, cutover, rollback, canary, restart, stop, status) reads top to
// bottom in a file of its own in src/ops, called with this instance's OpsContext. One
// instance per root; `serve` and embedding hosts both use it.
import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Colors } from './colors.js';
import { COLORS, type Color, type Config, otherColor, type Role } from './config.js';
import type { DeployOptions, DeployProgress, DeployResult } from './deploy/deploy.js';
import { type Roles, repairRoles } from './layout/roles.js';
import { droppedLines, type Logger, silentLogger } from './log.js';
import { OpsCounters } from './metrics/ops.js';
import { createRegistry, type MetricsSource } from './metrics/registry.js';
import { RequestCounts } from './metrics/requests.js';
import type { OpsContext, OpsState } from './ops/context.js';
import * as op from './ops/index.js';
import { OperationLock } from './ops/lock.js';
import { bufferSettings } from './proxy/buffer/buffering.js';
import type { ExchangeSettings } from './proxy/exchange.js';
import type { Gate } from './proxy/gate.js';
import { createHandlers, type Handlers } from './proxy/proxy-server.js';
import { Router } from './proxy/router.js';
import type { Target } from './proxy/target.js';
import { engineClock } from './proxy/upstream.js';
import { WatchKeeper } from './release/watch-keeper.js';
import { planReload, type ReloadPlan } from './reload.js';
import type { Supervisor } from './supervisor/supervisor.js';
import { TlsFront } from './tls/tls-front.js';
import { TrafficControls, type TrafficStatus } from './traffic/traffic.js';
import type { CanaryStatusResult, CutoverOptions, CutoverProgress, CutoverResult, Status } from './types.js';
import type { Registry } from 'prom-client';

export type { ReloadPlan } from './reload.js';
export type { CanaryStatus, TrafficStatus } from './traffic/traffic.js';
export type { ColorStatus, CutoverOptions, CutoverProgress, CutoverResult, Status, WatchReport } from './types.js';

export interface BgproxyOptions {
  config: Readonly<Config>;
  logger?: Logger;
  /** One log line per request; default true. */
  accessLog?: boolean;
}


/**
 * Events: 'cutover' (CutoverResult before the drain), 'drained' (CutoverResult), 'repair' (message),
 * 'cutover-progress' (CutoverProgress), 'watch' (WatchStatus, at its start and end),
 * 'auto-rollback' (WatchReport, once the watch tripped and the rollback finished or failed).
 */
export class Bgproxy extends EventEmitter {
  #config: Readonly<Config>;
  readonly log: Logger;
  /** Roles, the previous live color, the last release, the deploy running: what operations change (ops/context.ts). */
  readonly #state: OpsState;
  /** What each operation in src/ops gets from this instance. */
  readonly #ctx: OpsContext;
  /** Read by every exchange: a reload changes these in place. */
  readonly #exchange: ExchangeSettings;
  readonly #handlers: Handlers;
  #tick: NodeJS.Timeout | null = null;
  /** Asked in order before each request is forwarded (TLS, traffic controls); see proxy/gate.ts. */
  readonly #gates: Gate[] = [];
  listenAddress: string | null = null;
  readonly #colors: Colors;
  readonly #watch: WatchKeeper;
  /** One deploy, cutover, rollback... at a time per root (ops/lock.ts). */
  readonly #lock: OperationLock;
  /** Access rules, maintenance, pause and the canary split (src/traffic). */
  readonly #traffic: TrafficControls;
  readonly #tls: TlsFront | null;
  /** Switches, rollbacks, deploys, drains: counted always, served by the metrics. */
  readonly ops = new OpsCounters();
  /** Per-request counts, only when metrics are on (config.metrics). */
  readonly #requests: RequestCounts | null;
  #registry: Registry | null = null;

  constructor(opts: BgproxyOptions) {
    super();
    this.#config = opts.config;
    this.log = opts.logger ?? silentLogger();
    const repair = repairRoles(this.config.root);
    if (repair.repaired) this.log.warn({ event: 'repair', detail: repair.repaired }, `roles repaired: ${repair.repaired}`);
    this.#state = { roles: Object.freeze(repair.roles), previous: null, lastRelease: null, deploying: null };
    // HTTPS: its gates come first (the ACME challenge before any other policy).
    this.#tls = this.config.tls && this.config.mode === 'proxy' ? new TlsFront(this.config, this.log) : null;
    if (this.#tls) this.#gates.push(...this.#tls.gates);
    this.#colors = new Colors(() => this.#config, this.log, (color, state) => this.emit('app-state', { color, state }));
    this.#watch = new WatchKeeper({
      config: () => this.#config,
      log: this.log,
      emit: (event, data) => this.emit(event, data),
      target: (color) => this.#colors.target(color),
      supervisor: this.#colors.supervisor,
      rollback: (color, was, reason) => op.autoRollback(this.#ctx, color, was, reason),
      onDrained: (fn) => {
        this.once('drained', fn);
        return () => this.off('drained', fn);
      },
    });
    this.#lock = new OperationLock(
      () => this.#config,
      (action) => this.#watch.stop(`${action} started`),
    );
    this.#traffic = new TrafficControls({
      config: () => this.#config,
      log: this.log.child({ component: 'traffic' }),
      roles: () => this.#state.roles,
      target: (color) => this.#colors.target(color),
      supervisor: this.#colors.supervisor,
      markFailed: (color, reason) => this.markFailed(color, reason),
    });
    this.#gates.push(...this.#traffic.gates);
    // Last: a request the traffic controls let through to a color whose app could not start.
    this.#gates.push(this.#colors.gate((role) => this.#state.roles[role]));
    this.#ctx = {
      config: () => this.#config,
      log: this.log,
      state: this.#state,
      colors: this.#colors,
      traffic: this.#traffic,
      watch: this.#watch,
      tls: this.#tls,
      lock: this.#lock,
      counters: this.ops,
      listenAddress: () => this.listenAddress,
      emit: (event, data) => this.emit(event, data),
      locked: (action, fn) => this.locked(action, fn),
      assertHealthy: (color) => this.assertHealthy(color),
      markFailed: (color, reason, opts) => this.markFailed(color, reason, opts),
      // The deploy's own restart: it holds `deploying`, which refuses the operator's.
      restartColor: (color) => op.restartForRelease(this.#ctx, color),
      roleOf: (color) => this.roleOf(color),
    };
    this.#exchange = {
      upstreamTimeoutMs: this.config.upstreamTimeoutMs,
      holdMs: this.config.holdMs,
      retryBodyMax: 64 * 1024,
      maxBodyBytes: this.config.limits.maxBodyBytes,
      buffering: bufferSettings(this.config.buffering, null),
      logger: this.log.child({ component: 'proxy' }),
      clock: engineClock,
    };
    this.#schedule();
    this.#requests = this.config.metrics ? new RequestCounts() : null;
    const table = {
      targetFor: (role: Role): Target => this.#colors.target(this.#state.roles[role]),
      targetOf: (color: Color): Target => this.#colors.target(color),
    };
    this.#handlers = createHandlers({
      router: new Router(this.config.hosts, this.config.unknownHost),
      table,
      exchange: this.#exchange,
      trustProxy: this.config.trustProxy,
      logger: this.log,
      accessLog: opts.accessLog ?? true,
      limits: this.config.limits,
      gates: this.#gates,
      metrics: this.#requests,
    });
  }

  /**
   * The Prometheus registry (made on first use) when config.metrics is set, else null: serve
   * serves it on metrics.listen; a host that embeds bgproxy may serve `registry.metrics()` itself.
   */
  get metrics(): Registry | null {
    if (this.#requests === null) return null;
    this.#registry ??= createRegistry(this.#metricsSource(this.#requests));
    return this.#registry;
  }

  #metricsSource(requests: RequestCounts): MetricsSource {
    return {
      requests,
      ops: this.ops,
      live: () => this.#state.roles.live,
      target: (color) => this.#colors.target(color),
      app: (color) => {
        const sup = this.#colors.supervisor;
        if (sup === null) return null;
        return { up: sup.snapshot(color)?.state === 'running' && this.#colors.failure(color) === null, restarts: sup.restartsTotal(color) };
      },
      pause: () => this.#traffic.pauseCounts(),
      certificates: () => this.#tls?.store.served().map(([host, c]) => ({ host, notAfter: c.notAfter })) ?? [],
      droppedLogLines: () => droppedLines(this.log),
    };
  }

  /** The config in force: the one serve started with, or the last one reloaded. */
  get config(): Readonly<Config> {
    return this.#config;
  }

  /** HTTPS (certificates, ACME, the TLS listener's server) when tls is configured. */
  get tls(): TlsFront | null {
    return this.#tls;
  }

  get roles(): Readonly<Roles> {
    return this.#state.roles;
  }

  /**
   * Applies a new config (SIGHUP, `bgproxy reload`) to the running proxy, all or nothing:
   * hosts, timeouts, limits, trustProxy, holdMs and the rest apply to requests and
   * operations from now on; app settings at each app's next start; a change that needs a
   * restart (listen, colors, mode, ...) is refused and nothing changes. Waits for no
   * operation: a deploy, cutover or rollback in progress refuses it (BG_LOCKED).
   */
  reload(next: Readonly<Config>): Promise<ReloadPlan> {
    return this.locked('reload', async () => {
      const plan = planReload(this.#config, next);
      // Own certificates are read again (their files may have changed, the config not)
      // and checked before anything changes.
      const tls = this.#tls?.prepare(next);
      if (tls?.renewed.length) plan.notes.push(`tls: new certificate for ${tls.renewed.join(', ')} (new connections get it)`);
      if (plan.changed.length === 0) {
        tls?.apply();
        if (tls?.renewed.length) this.log.info({ event: 'reload', changed: [], certificates: tls.renewed }, plan.notes.join('; '));
        return plan;
      }
      this.#config = next;
      tls?.apply();
      this.#exchange.upstreamTimeoutMs = next.upstreamTimeoutMs;
      this.#exchange.holdMs = next.holdMs;
      this.#exchange.maxBodyBytes = next.limits.maxBodyBytes;
      this.#exchange.buffering = bufferSettings(next.buffering, this.#exchange.buffering);
      this.#schedule();
      this.#handlers.configure({ router: new Router(next.hosts, next.unknownHost), trustProxy: next.trustProxy, limits: next.limits });
      this.#traffic.configure(next);
      this.log.info({ event: 'reload', changed: plan.changed, atNextStart: plan.atNextStart }, `config reloaded: ${plan.changed.join(', ')}`);
      this.emit('reload', plan);
      return plan;
    });
  }

  target(color: Color): Target {
    return this.#colors.target(color);
  }

  /** Present when app.start is configured: bgproxy owns both colors' processes. */
  get supervisor(): Supervisor | null {
    return this.#colors.supervisor;
  }

  /** Marks `color` as not fit to go live (a failed deploy), or clears the mark; kept on disk (see deploy/failed-mark.ts). */
  markFailed(color: Color, reason: string | null, opts: { running?: boolean } = {}): void {
    this.#colors.markFailed(color, reason, opts);
  }

  failure(color: Color): string | null {
    return this.#colors.failure(color);
  }

  /** Starts the app of every color that holds a release (serve calls this after listening). */
  startApps(): Promise<void> {
    return this.#colors.startApps((c) => this.roleOf(c));
  }

  /** Starts (or restarts, undrained) `color`'s app and resolves when it is healthy. */
  startColor(color: Color): Promise<void> {
    return op.startColor(this.#ctx, color);
  }

  /** Drains `color` and stops its app; the live color only with force. */
  stopColor(color: Color, opts: { force?: boolean } = {}): Promise<{ cutOff: number; killed: boolean; drainMs: number }> {
    return op.stopColor(this.#ctx, color, opts);
  }

  /** Drains `color`, stops its app and starts it again; requests meanwhile are held. */
  restartColor(color: Color): Promise<{ cutOff: number; drainMs: number }> {
    return op.restartColor(this.#ctx, color);
  }

  /** Throws BG_UNHEALTHY unless `color` is fit to go live and answers its health path now. */
  assertHealthy(color: Color): Promise<void> {
    return this.#colors.assertHealthy(color);
  }

  /** The request logic for the proxy's own listener (serve). */
  get handlers(): Handlers {
    return this.#handlers;
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
  protected locked<T>(action: string, fn: () => Promise<T>): Promise<T> {
    return this.#lock.run(action, fn);
  }

  /**
   * Makes next live and live next: checks next is healthy, runs beforeCutover and the
   * warm-up against it, switches, waits for the drain, runs afterCutover, and (with
   * watchMs) starts the post-cutover watch.
   */
  cutover(opts: CutoverOptions = {}, onProgress?: (p: CutoverProgress) => void): Promise<CutoverResult> {
    return op.cutover(this.#ctx, opts, onProgress);
  }

  /**
   * Canary cutover: `percent` (0.01..99.99) of live-host traffic goes to next, sticky per
   * client, after the same health check as a cutover; called again, changes the share.
   * `cutover` completes it, `rollback` ends it. With watchMs (or watch.watchMs), a bad 5xx
   * rate on next ends it by itself.
   */
  canary(percent: number, opts: CutoverOptions = {}): Promise<CanaryStatusResult> {
    return op.canary(this.#ctx, percent, opts);
  }

  /** Makes the previous live color live again (a switch back with the health check; no beforeCutover, no warm-up); during a canary, ends it. */
  rollback(opts: CutoverOptions = {}, onProgress?: (p: CutoverProgress) => void): Promise<CutoverResult> {
    return op.rollback(this.#ctx, opts, onProgress);
  }

  /**
   * Ends the deploy running now, if any (serve stopping, `deploy --cancel`): its commands'
   * process groups are stopped, no further step runs, next is marked failed with `reason`.
   * Returns what was interrupted, or null when no deploy runs.
   */
  interruptDeploy(reason: string): { color: Color; commit: string | null; step: string } | null {
    return op.interruptDeploy(this.#ctx, reason);
  }

  /** Resolves once the operation holding the lock (if any) has ended, or after timeoutMs; true if it ended. */
  settled(timeoutMs: number): Promise<boolean> {
    return this.#lock.settled(timeoutMs);
  }

  /** Holds new live-host requests (see traffic/pause.ts); resolves once live has none in flight. */
  pause(timeoutMs: number): Promise<{ timeoutMs: number; inflightLeft: number; drainMs: number }> {
    return this.#traffic.pause(timeoutMs);
  }

  resume(): { released: number; pausedMs: number; timedOut: number; refused: number } {
    return this.#traffic.resume();
  }

  /**
   * Shutdown begins: requests held by a pause go on now (a restart of serve resumes), rather
   * than hold their connections until the drain timeout cuts them.
   */
  releaseHeld(): void {
    this.#traffic.close();
  }

  /** Live hosts answer 503 + Retry-After with ROOT/maintenance.html while on; persisted in ROOT/traffic.json. */
  maintenance(on: boolean, retryAfterS?: number): Promise<TrafficStatus['maintenance']> {
    return this.#traffic.maintenance(on, retryAfterS);
  }

  /** Deploys a commit into the next color (see deploy/deploy.ts); with cutover, makes it live once healthy. */
  deploy(
    opts: DeployOptions & { cutover?: boolean; watchMs?: number } = {},
    onProgress?: (p: DeployProgress) => void,
  ): Promise<DeployResult & { cutover?: CutoverResult }> {
    return op.deploy(this.#ctx, opts, onProgress);
  }

  status(): Promise<Status> {
    return op.status(this.#ctx);
  }

  /** Waits for in-flight requests on both colors (bounded), stops the apps, drops the pools. */
  async close(timeoutMs = this.config.drainTimeoutMs): Promise<void> {
    await op.stop(this.#ctx, timeoutMs);
    this.#handlers.flush();
    if (this.#tick) clearInterval(this.#tick);
    this.#tick = null;
  }

  /**
   * One coarse timer for every upstream request and pooled socket (no timer per request):
   * it moves the engine clock, times out requests whose app went quiet, drops idle sockets.
   */
  #schedule(): void {
    if (this.#tick) clearInterval(this.#tick);
    const shortest = Math.min(this.#exchange.upstreamTimeoutMs, this.config.timeouts.upstreamIdleMs);
    this.#tick = setInterval(() => {
      const now = performance.now();
      engineClock.now = now;
      for (const c of COLORS) this.#colors.target(c).pool.sweep(now, this.#exchange.upstreamTimeoutMs);
    }, Math.max(25, Math.min(1000, Math.floor(shortest / 4))));
    this.#tick.unref();
  }

  roleOf(color: Color): Role {
    return this.#state.roles.live === color ? 'live' : 'next';
  }

  otherColor(color: Color): Color {
    return otherColor(color);
  }
}
