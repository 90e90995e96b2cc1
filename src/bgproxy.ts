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
import { Forwarder } from './proxy/forward.js';
import { createHandlers, type Handlers } from './proxy/proxy-server.js';
import { Router } from './proxy/router.js';
import { Target } from './proxy/target.js';
import { checkHealth } from './supervisor/health-check.js';

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
  /** Serialises cutover/rollback (and later deploy) inside this process. */
  #op: Promise<unknown> = Promise.resolve();
  /** The live color before the last cutover, for rollback. */
  #previousLive: Color | null = null;
  listenAddress: string | null = null;

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

  /** Runs `fn` after every operation queued before it. */
  protected exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#op.then(fn, fn);
    this.#op = run.catch(() => undefined);
    return run;
  }

  /** Makes next live and live next, after checking next is healthy; waits for the drain. */
  cutover(opts: CutoverOptions = {}): Promise<CutoverResult> {
    return this.exclusive(() => this.#switchTo(this.#roles.next, opts));
  }

  /** Makes the previous live color live again (a cutover back, with the same checks). */
  rollback(opts: CutoverOptions = {}): Promise<CutoverResult> {
    return this.exclusive(async () => {
      const back = this.#previousLive ?? this.#roles.next;
      if (back === this.#roles.live) throw new BgError('BG_STATE', `${back} is already live; nothing to roll back`);
      return this.#switchTo(back, opts);
    });
  }

  async #switchTo(color: Color, opts: CutoverOptions): Promise<CutoverResult> {
    const started = performance.now();
    const was = this.#roles.live;
    if (color === was) throw new BgError('BG_STATE', `${color} is already live`);
    if (!opts.force) await this.assertHealthy(color);
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

  /** Throws BG_UNHEALTHY unless `color` answers its health path now. */
  async assertHealthy(color: Color): Promise<void> {
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
    const h = this.config.app.health;
    const probe = await checkHealth(t.port, h.path, Math.min(h.timeoutMs, 1000));
    return {
      port: t.port,
      commit: null,
      pid: null,
      state: probe.ok ? 'running' : 'down',
      healthy: probe.ok,
      inflight: t.inflight,
      served: t.served,
      websockets: t.websockets,
      reason: probe.ok ? null : (probe.reason ?? null),
    };
  }

  /** Waits for in-flight requests on both colors (bounded), then drops the upstream pools. */
  async close(timeoutMs = this.config.drainTimeoutMs): Promise<void> {
    await Promise.all(COLORS.map((c) => this.#targets[c].drain(timeoutMs)));
    for (const c of COLORS) {
      this.#targets[c].closeWebsockets();
      this.#targets[c].close();
    }
    this.#forwarder.close();
  }

  roleOf(color: Color): Role {
    return this.#roles.live === color ? 'live' : 'next';
  }

  otherColor(color: Color): Color {
    return otherColor(color);
  }
}
