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
import { hookError, runHook } from './release/hooks.js';
import { colorProbe } from './release/probe.js';
import { historyFields, newReport, type ReleaseAction, type ReleaseReport, summarizeReport } from './release/report.js';
import { warmUp, warmupError } from './release/warmup.js';
import { formatWatch, ReleaseWatch, type WatchStatus } from './release/watch.js';
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
  /**
   * Cutover only: watch the new live color this long and roll back automatically when it
   * does worse than before; default config watch.watchMs, 0 turns it off.
   */
  watchMs?: number;
}

/** Steps: beforeCutover, warmup, switch (persist, switch, drain), afterCutover; hook output as lines. */
export type CutoverProgress = DeployProgress;

/** The watch as status shows it, with the auto-rollback it caused, if any. */
export interface WatchReport extends WatchStatus {
  /** msSinceCutover: from the watch's start (the switch) until the rollback's drain ended; switchMs: the rollback alone. */
  rollback?: { ok: boolean; live: Color; msSinceCutover: number; switchMs?: number; drainMs?: number; error?: string };
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
  /** Hooks and warm-up of this cutover (a rollback runs afterCutover only). */
  hooks?: ReleaseReport['hooks'];
  warmup?: ReleaseReport['warmup'];
  /** Present when a post-cutover watch started; it goes on in the background. */
  watch?: WatchStatus;
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
  /** The last cutover/rollback this server ran: its hooks and warm-up, or why it failed. */
  lastRelease: ReleaseReport | null;
  /** The current or last post-cutover watch. */
  watch: WatchReport | null;
}

/** Reports the steps of one cutover: `step` times a step, `line` streams a command's output. */
interface Progress {
  step<T>(name: string, fn: () => Promise<T>): Promise<T>;
  line(step: string): (line: string) => void;
}

/**
 * Events: 'cutover' (CutoverResult before the drain), 'drained' (CutoverResult), 'repair' (message),
 * 'cutover-progress' (CutoverProgress), 'watch' (WatchStatus, at its start and end),
 * 'auto-rollback' (WatchReport, once the watch tripped and the rollback finished or failed).
 */
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
  /** The last cutover/rollback's report, for status. */
  #lastRelease: ReleaseReport | null = null;
  #watch: ReleaseWatch | null = null;
  #watchRollback: WatchReport['rollback'] | undefined;
  /** Locked operations started (auto-rollbacks aside), and the one holding the lock now. */
  #operations = 0;
  #running: Promise<void> = Promise.resolve();

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
    if (action !== 'auto-rollback') {
      // Anything else that changes the colors changes what the watch would roll back to.
      this.#operations++;
      this.#stopWatch(`${action} started`);
    }
    const run = (async () => {
      try {
        return await fn();
      } finally {
        await lock.release();
      }
    })();
    this.#running = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /**
   * Makes next live and live next: checks next is healthy, runs beforeCutover and the
   * warm-up against it, switches, waits for the drain, runs afterCutover, and (with
   * watchMs) starts the post-cutover watch.
   */
  cutover(opts: CutoverOptions = {}, onProgress?: (p: CutoverProgress) => void): Promise<CutoverResult> {
    return this.locked('cutover', () => this.#release('cutover', () => this.#roles.next, opts, onProgress));
  }

  /** Makes the previous live color live again (a switch back with the health check; no beforeCutover, no warm-up). */
  rollback(opts: CutoverOptions = {}, onProgress?: (p: CutoverProgress) => void): Promise<CutoverResult> {
    return this.locked('rollback', () => this.#release('rollback', () => this.#rollbackTarget(), opts, onProgress));
  }

  #rollbackTarget(): Color {
    const back = this.#previousLive ?? this.#roles.next;
    if (back === this.#roles.live) throw new BgError('BG_STATE', `${back} is already live; nothing to roll back`);
    return back;
  }

  /** Deploys a commit into the next color (see deploy/deploy.ts); with cutover, makes it live once healthy. */
  deploy(opts: DeployOptions & { cutover?: boolean } = {}, onProgress?: (p: DeployProgress) => void): Promise<DeployResult & { cutover?: CutoverResult }> {
    return this.locked('deploy', async () => {
      const result = await deploy(this.#deployHost(), opts, (p) => {
        this.emit('deploy-progress', p);
        onProgress?.(p);
      });
      if (!opts.cutover) return result;
      const cut = await this.#release('cutover', () => result.color, {}, onProgress);
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

  /**
   * One cutover, rollback or auto-rollback, top to bottom:
   * validate -> beforeCutover hook and warm-up -> persist -> switch -> drain -> afterCutover -> watch.
   * The caller holds the lock. Everything before the switch may fail and leaves live as it was.
   */
  async #release(
    action: ReleaseAction,
    pick: () => Color,
    opts: CutoverOptions,
    onProgress?: (p: CutoverProgress) => void,
    reason?: string,
  ): Promise<CutoverResult> {
    const report = newReport(action);
    if (reason) report.reason = reason;
    this.#lastRelease = report;
    const progress = this.#progress(report, onProgress);
    return this.#recorded(report, async () => {
      const color = pick();
      report.color = color;
      if (color === this.#roles.live) throw new BgError('BG_STATE', `${color} is already live`);
      if (!opts.force) await this.assertHealthy(color);
      const watchMs = this.#watchMsFor(action, opts);
      const commit = (await readRelease(this.config.root, color).catch(() => null))?.commit ?? null;

      if (action === 'cutover') await this.#beforeSwitch(color, commit, report, progress);
      const baseline = this.#watchBaseline(color, opts);
      report.step = 'switch';
      const r = await progress.step('switch', () => this.#switchTo(color, opts));
      delete report.step;

      const after = await progress.step('afterCutover', () =>
        runHook(this.config, 'afterCutover', color, { commit, role: 'live', action, onLine: progress.line('afterCutover') }),
      );
      if (after) {
        report.hooks.afterCutover = after;
        // The switch stays: the new release is live and serving; only the hook's own work is missing.
        if (!after.ok) this.log.error({ event: 'hook-failed', hook: 'afterCutover', color, error: after.error }, after.error ?? '');
      }
      const watch = watchMs > 0 ? this.#startWatch(color, r.was, watchMs, baseline) : null;
      return {
        ...r,
        ...(report.hooks.beforeCutover || report.hooks.afterCutover ? { hooks: { ...report.hooks } } : {}),
        ...(report.warmup ? { warmup: report.warmup } : {}),
        ...(watch ? { watch } : {}),
      };
    });
  }

  /** beforeCutover hook, then warm-up, against `color` while it is still next; either failing aborts. */
  async #beforeSwitch(color: Color, commit: string | null, report: ReleaseReport, progress: Progress): Promise<void> {
    const what = `cutover to ${color}`;
    report.step = 'beforeCutover';
    const hook = await progress.step('beforeCutover', () =>
      runHook(this.config, 'beforeCutover', color, { commit, role: 'next', action: 'cutover', onLine: progress.line('beforeCutover') }),
    );
    if (hook) report.hooks.beforeCutover = hook;
    if (hook && !hook.ok) throw hookError(hook, what);
    const w = this.config.app.warmup;
    if (w.paths.length > 0) {
      report.step = 'warmup';
      const host = this.config.hosts.live[0] ?? `127.0.0.1:${this.config.colors[color].port}`;
      const opts = { port: this.config.colors[color].port, host, paths: w.paths, concurrency: w.concurrency, timeoutMs: w.timeoutMs };
      const warm = await progress.step('warmup', () =>
        warmUp(opts, (a) => {
          if (a.status === null || a.status < 200 || a.status >= 300) progress.line('warmup')(`GET ${a.path}: ${a.status ?? a.error}`);
        }),
      );
      report.warmup = warm;
      if (!warm.ok) throw warmupError(warm, what);
    }
    delete report.step;
  }

  /** Reports progress to the caller and as events; `step` times a step (also when it is skipped: null). */
  #progress(report: ReleaseReport, onProgress?: (p: CutoverProgress) => void): Progress {
    const send = (p: CutoverProgress): void => {
      this.emit('cutover-progress', { ...p, action: report.action });
      onProgress?.(p);
    };
    return {
      line: (step) => (line) => send({ step, phase: 'line', line }),
      step: async (step, fn) => {
        const t0 = performance.now();
        // The switch itself is the result line; only the steps around it are progress.
        const announce = this.#hasWork(step);
        if (announce) send({ step, phase: 'start' });
        const out = await fn();
        if (announce) send({ step, phase: 'done', ms: Math.round(performance.now() - t0) });
        return out;
      },
    };
  }

  #hasWork(step: string): boolean {
    if (step === 'warmup') return this.config.app.warmup.paths.length > 0;
    if (step === 'beforeCutover' || step === 'afterCutover') return this.config.app.hooks[step].length > 0;
    return false;
  }

  /** Appends the outcome to ROOT/history.jsonl and keeps it for status. */
  async #recorded(report: ReleaseReport, fn: () => Promise<CutoverResult>): Promise<CutoverResult> {
    const t0 = performance.now();
    try {
      const r = await fn();
      report.result = 'ok';
      report.durationMs = r.totalMs;
      const release = await readRelease(this.config.root, r.live).catch(() => null);
      const summary = summarizeReport(report);
      await appendHistory(this.config.root, {
        action: report.action,
        color: r.live,
        commit: release?.commit ?? null,
        result: 'ok',
        durationMs: r.totalMs,
        was: r.was,
        drained: r.inflightAtSwitch,
        cutOff: r.cutOff,
        ...(summary ? { message: summary } : {}),
        ...historyFields(report),
        ...(r.watch ? { watchMs: r.watch.watchMs } : {}),
      }).catch((err: Error) => this.log.warn({ err: err.message }, 'cannot write history'));
      return r;
    } catch (err) {
      report.result = 'failed';
      report.durationMs = Math.round(performance.now() - t0);
      report.message = (err as Error).message;
      report.step ??= 'validate';
      this.log.error({ event: `${report.action}-failed`, color: report.color, step: report.step }, report.message);
      await appendHistory(this.config.root, {
        action: report.action,
        color: report.color ?? this.#roles.next,
        result: 'failed',
        durationMs: report.durationMs,
        message: report.message,
        ...historyFields(report),
      }).catch(() => undefined);
      throw err;
    }
  }

  /** Persist -> switch memory in one assignment -> drain what the old live color was serving. */
  async #switchTo(color: Color, opts: CutoverOptions): Promise<CutoverResult> {
    const started = performance.now();
    const was = this.#roles.live;
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

  // --- the post-cutover watch -------------------------------------------------------

  /** How long to watch after this switch: cutovers only, proxy mode only (nginx keeps the counters). */
  #watchMsFor(action: ReleaseAction, opts: CutoverOptions): number {
    if (action !== 'cutover') return 0;
    const ms = opts.watchMs ?? this.config.watch.watchMs;
    if (ms > 0 && this.config.mode === 'nginx') {
      if (opts.watchMs !== undefined) throw new BgError('BG_USAGE', 'the post-cutover watch needs proxy mode: in nginx mode bgproxy does not see the requests');
      return 0;
    }
    return ms;
  }

  /** The level before the switch: the old live color's 5xx rate, and whether `color` is healthy now. */
  #watchBaseline(color: Color, opts: CutoverOptions): { errorRate: number; healthy: boolean } {
    const old = this.#targets[this.#roles.live];
    const healthy = !opts.force || this.supervisor?.snapshot(color)?.state === 'running';
    return { errorRate: old.served > 0 ? old.errors5xx / old.served : 0, healthy };
  }

  #startWatch(color: Color, was: Color, watchMs: number, baseline: { errorRate: number; healthy: boolean }): WatchStatus {
    const settings = { ...this.config.watch, watchMs };
    const switchedAt = performance.now();
    this.#watchRollback = undefined;
    const probe = colorProbe(this.config, color, this.#targets[color], this.supervisor);
    const watch = new ReleaseWatch({ color, was }, probe, settings, baseline, (s) => {
      this.log[s.state === 'tripped' ? 'warn' : 'info']({ event: 'watch-end', ...s }, formatWatch(s));
      this.emit('watch', s);
      if (s.state === 'tripped') void this.#autoRollback(s, switchedAt);
    });
    this.#watch = watch.start();
    const s = watch.status();
    this.log.info({ event: 'watch', ...s }, formatWatch(s));
    this.emit('watch', s);
    return s;
  }

  #stopWatch(reason: string): void {
    this.#watch?.stop(reason);
  }

  /** The watch tripped: a normal, drained, locked rollback to the color that was live before. */
  async #autoRollback(tripped: WatchStatus, switchedAt: number): Promise<void> {
    const { color, was } = tripped;
    const reason = tripped.reason ?? 'the watch tripped';
    const operations = this.#operations;
    // Timed to when traffic is back and the bad color drained, before the bookkeeping.
    let drainedAt = 0;
    const onDrained = (): void => {
      drainedAt ||= performance.now();
    };
    this.once('drained', onDrained);
    const sinceCutover = (): number => Math.round((drainedAt || performance.now()) - switchedAt);
    try {
      // A fast trip can come while the cutover that started the watch still holds the lock
      // (afterCutover, history): wait for it rather than be refused.
      await this.#running;
      const back = await this.locked('auto-rollback', () =>
        this.#release(
          'auto-rollback',
          () => {
            // Someone acted since the watch tripped: what to roll back to is theirs to say.
            if (this.#operations !== operations) throw new BgError('BG_STATE', 'another operation ran since the watch tripped');
            if (this.#roles.live !== color) throw new BgError('BG_STATE', `${color} is no longer live; nothing to roll back`);
            return was;
          },
          {},
          undefined,
          reason,
        ),
      );
      // Keep the release that failed the watch from going live again by accident.
      this.markFailed(color, `rolled back automatically: ${reason}`);
      this.#watchRollback = { ok: true, live: was, msSinceCutover: sinceCutover(), switchMs: back.totalMs, drainMs: back.drainMs };
      this.log.warn({ event: 'auto-rollback', color: was, from: color, reason, ...this.#watchRollback }, `rolled back to ${was} because ${reason}`);
    } catch (err) {
      const error = (err as Error).message;
      this.#watchRollback = { ok: false, live: this.#roles.live, msSinceCutover: sinceCutover(), error };
      this.log.error({ event: 'auto-rollback-failed', color, reason, err: error }, `automatic rollback from ${color} failed: ${error}`);
    } finally {
      this.off('drained', onDrained);
    }
    this.emit('auto-rollback', this.#watchReport());
  }

  #watchReport(): WatchReport | null {
    if (!this.#watch) return null;
    return { ...this.#watch.status(), ...(this.#watchRollback ? { rollback: this.#watchRollback } : {}) };
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
      lastRelease: this.#lastRelease,
      watch: this.#watchReport(),
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
    this.#stopWatch('shutting down');
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
