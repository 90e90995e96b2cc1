// `bgproxy serve`: the proxy listener, the Bgproxy instance and the control socket,
// started in that order of safety (control socket first, so a second serve on the same
// root fails before it binds anything) and stopped gracefully.
import { readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type tls from 'node:tls';
import { Bgproxy, type ReloadPlan, type Status } from './bgproxy.js';
import { CONFIG_FILE, type Color, type Config, type ConfigSource, formatListen, type Listen, loadConfig } from './config.js';
import { type CommandHandler, ControlServer, type Emit, type Receive } from './control/server.js';
import { BgError } from './errors.js';
import { checkRunDir } from './layout/run-dir.js';
import type { Logger } from './log.js';
import { type MetricsServer, startMetricsServer } from './metrics/server.js';
import { cleanTempDir } from './proxy/buffer/temp-files.js';
import { listenOn } from './proxy/front.js';
import { H2Front } from './proxy/h2/front.js';
import { engineProblem } from './proxy/llhttp.js';
import { createFrontServer, type FrontServer } from './proxy/proxy-server.js';
import { planReload } from './reload.js';
import { formatHolder, whoListens } from './supervisor/port-owner.js';

export interface ServeOptions {
  config: Readonly<Config>;
  logger: Logger;
  accessLog?: boolean;
  /** Reads the config again for a reload (default: ROOT/bgproxy.json); applies the same overrides as at start. */
  readConfig?: ConfigSource;
  /**
   * An already listening socket to serve on instead of binding `listen` (systemd socket
   * activation: fd 3). Whoever passed it keeps it open across restarts of serve, so
   * connections made meanwhile wait in its backlog instead of being refused.
   */
  listenFd?: number;
  /** The same for the TLS listener (tls.listen): the socket named "https". */
  tlsListenFd?: number;
}

export interface ActivatedFds {
  /** The plain HTTP listener's socket. */
  http: number | null;
  /** The TLS listener's socket. */
  https: number | null;
}

/**
 * The listening sockets systemd passed (socket activation, sd_listen_fds(3)), from fd 3 on,
 * when LISTEN_FDS is 1 or more and LISTEN_PID names this process: one socket is the plain
 * listener (unless its FileDescriptorName= is "https"); two must be named "http" and
 * "https". Removes the variables, so the apps serve starts do not think the sockets are theirs.
 */
export function activatedListenFds(env: NodeJS.ProcessEnv = process.env, pid = process.pid): ActivatedFds | null {
  const fds = Number(env.LISTEN_FDS ?? 0);
  const forUs = env.LISTEN_PID === undefined || Number(env.LISTEN_PID) === pid;
  const names = (env.LISTEN_FDNAMES ?? '').split(':');
  delete env.LISTEN_FDS;
  delete env.LISTEN_PID;
  delete env.LISTEN_FDNAMES;
  if (!Number.isInteger(fds) || fds < 1 || !forUs) return null;
  if (fds === 1) return names[0] === 'https' ? { http: null, https: 3 } : { http: 3, https: null };
  const http = names.indexOf('http');
  const https = names.indexOf('https');
  if (fds > 2 || http < 0 || https < 0) {
    throw new BgError(
      'BG_USAGE',
      `systemd passed ${fds} sockets (LISTEN_FDS) named ${JSON.stringify(names.join(':'))}; bgproxy serves one plain and one TLS socket: give the .socket unit's ListenStream lines FileDescriptorName=http and FileDescriptorName=https`,
    );
  }
  return { http: 3 + http, https: 3 + https };
}

export interface Running {
  bg: Bgproxy;
  /** "host:port" actually bound (port 0 resolved), or null in nginx mode. */
  listen: string | null;
  /** The TLS listener's "host:port", or null without tls. */
  tlsListen: string | null;
  /** The metrics listener's "host:port" (GET /metrics), or null without metrics. */
  metricsListen: string | null;
  /** Graceful stop: stop accepting, drain, close the control socket. Idempotent. */
  stop(): Promise<void>;
  /** Reads the config again and applies it (see Bgproxy.reload); rejects, changing nothing, when it cannot. */
  reload(): Promise<ReloadPlan>;
}

/** The HTTPS side, for the certs commands; refused when bgproxy.json has no tls. */
function tlsOf(bg: Bgproxy): NonNullable<Bgproxy['tls']> {
  if (bg.tls) return bg.tls;
  // The file may have tls by now: then it is not loaded yet, and only a restart loads it.
  if (fileHasTls(path.join(bg.config.root, CONFIG_FILE))) {
    throw new BgError('BG_STATE', `${CONFIG_FILE} has tls, but this serve started without it: adding tls opens a listener, so restart serve to load it (bgproxy reload refuses it)`);
  }
  throw new BgError('BG_STATE', `no tls in ${CONFIG_FILE}: bgproxy serves plain HTTP only (add a "tls" section and restart serve for HTTPS)`);
}

function fileHasTls(file: string): boolean {
  try {
    const raw = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown> | null;
    return typeof raw?.tls === 'object' && raw.tls !== null;
  } catch {
    return false;
  }
}

/** "blue", "green", "live" or "next" -> a color, as of now. */
export function colorArg(bg: Bgproxy, v: unknown): Color {
  if (v === 'blue' || v === 'green') return v;
  if (v === 'live' || v === 'next') return bg.roles[v];
  throw new BgError('BG_USAGE', `expected blue, green, live or next, got ${JSON.stringify(v)}`);
}

function optString(v: unknown, key: string): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new BgError('BG_CONTROL', `"${key}" must be a string`);
  return v;
}

/** "watchMs": absent (config decides), or whole milliseconds, 0 to 24 h (0 turns the watch off). */
function optWatchMs(v: unknown): { watchMs?: number } {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 24 * 3_600_000) {
    throw new BgError('BG_CONTROL', '"watchMs" must be whole milliseconds between 0 and 86400000');
  }
  return { watchMs: v };
}

function numberArg(v: unknown, key: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    throw new BgError('BG_USAGE', `"${key}" must be a number between ${min} and ${max}`);
  }
  return v;
}

/** At stop, how long the interrupted operation gets to end and answer its client after the apps stopped. */
const SETTLE_MS = 5_000;

/** How long `deploy --cancel` waits for the interrupted deploy to end before it answers. */
const CANCEL_WAIT_MS = 15_000;

/** How long a gated cutover holds the root's lock waiting for "go" before it gives up. */
const GATE_TIMEOUT_MS = 5 * 60_000;

/**
 * "gate": true: once every check passed, say "ready" (an event) and switch only when the
 * client's next line is "go"; anything else, a hang-up or the timeout aborts, nothing switched.
 */
function optGate(v: unknown, emit: Emit, receive: Receive): { gate?: (target: { color: Color; commit: string | null }) => Promise<void> } {
  if (v !== true) return {};
  return {
    gate: async ({ color, commit }) => {
      emit('ready', { color, commit });
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<null>((resolve) => {
        timer = setTimeout(() => resolve(null), GATE_TIMEOUT_MS);
      });
      const line = await Promise.race([receive(), timeout]);
      clearTimeout(timer);
      if (line !== 'go') {
        throw new BgError('BG_FLEET', `the gate before the switch to ${color} was not opened (${line === null ? 'no "go"' : `got "${line.slice(0, 20)}"`}): nothing switched`);
      }
    },
  };
}

export function controlHandlers(bg: Bgproxy): Record<string, CommandHandler> {
  return {
    status: () => bg.status(),
    cutover: (args, emit, receive) =>
      bg.cutover({ force: args.force === true, ...optWatchMs(args.watchMs), ...optGate(args.gate, emit, receive) }, (p) =>
        emit('progress', { ...p }),
      ),
    rollback: (args, emit, receive) =>
      bg.rollback({ force: args.force === true, ...optGate(args.gate, emit, receive) }, (p) => emit('progress', { ...p })),
    restart: async (args) => {
      const color = colorArg(bg, args.color);
      return { color, ...(await bg.restartColor(color)) };
    },
    stop: async (args) => {
      const color = colorArg(bg, args.color);
      return { color, ...(await bg.stopColor(color, { force: args.force === true })) };
    },
    start: async (args) => {
      const color = colorArg(bg, args.color);
      await bg.startColor(color);
      return { color };
    },
    deploy: (args, emit) =>
      bg.deploy(
        {
          commit: optString(args.commit, 'commit'),
          from: optString(args.from, 'from'),
          force: args.force === true,
          allowDirty: args.allowDirty === true,
          cutover: args.cutover === true,
          ...optWatchMs(args.watchMs),
        },
        (p) => emit('progress', { ...p }),
      ),
    'deploy-cancel': async () => {
      const d = bg.interruptDeploy('cancelled by bgproxy deploy --cancel');
      if (!d) throw new BgError('BG_STATE', 'no deploy is running');
      // Answer once it has ended: its command's group stopped, next marked failed.
      const ended = await bg.settled(CANCEL_WAIT_MS);
      return { ...d, ended };
    },
    canary: (args) => bg.canary(numberArg(args.percent, 'percent', 0, 100), { force: args.force === true, ...optWatchMs(args.watchMs) }),
    pause: (args) => bg.pause(numberArg(args.timeoutMs, 'timeoutMs', 1, 24 * 3_600_000)),
    resume: async () => bg.resume(),
    maintenance: async (args) => {
      if (typeof args.on !== 'boolean') throw new BgError('BG_CONTROL', '"on" must be true or false');
      const retryAfterS = args.retryAfterS === undefined ? undefined : numberArg(args.retryAfterS, 'retryAfterS', 0, 86_400);
      return { maintenance: await bg.maintenance(args.on, retryAfterS) };
    },
    ping: async () => ({ pid: process.pid }),
    certs: async () => tlsOf(bg).status(),
    'certs-renew': async (args) => tlsOf(bg).renew(args.force === true),
  };
}

/**
 * One line for a listener serve could not open: with EADDRINUSE, who holds the port (pid
 * and command, from /proc: an old serve, nginx, another site), so the fix is obvious; with
 * EACCES, why a low port is refused. `setting`: the bgproxy.json key that names it.
 */
export async function listenFailure(err: unknown, at: Listen | number, setting: 'listen' | 'tls.listen' | 'metrics.listen'): Promise<BgError> {
  const e = err as NodeJS.ErrnoException;
  const label = setting === 'listen' ? '' : ` (${setting})`;
  if (typeof at === 'number') return new BgError('BG_STATE', `cannot listen on the socket passed as fd ${at}${label}: ${e.code ?? e.message}`);
  const where = `${formatListen(at)}${label}`;
  let why: string;
  if (e.code === 'EADDRINUSE') {
    const held = await whoListens(at.port).catch(() => null);
    const by = held ? formatHolder(held.holder) : 'another process';
    why = `port ${at.port} is already in use by ${by}: stop it, or change ${setting} in ${CONFIG_FILE}`;
  } else if (e.code === 'EACCES') {
    why = `permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE; see Running under systemd in the README), or change ${setting} in ${CONFIG_FILE}`;
  } else if (e.code === 'EADDRNOTAVAIL') {
    why = `${at.host} is not an address of this machine: change ${setting} in ${CONFIG_FILE}`;
  } else {
    why = e.code ?? e.message;
  }
  return new BgError('BG_STATE', `cannot listen on ${where}: ${why}`);
}

export async function startServer(opts: ServeOptions): Promise<Running> {
  const { config, logger } = opts;
  if (engineProblem !== null && config.mode === 'proxy') throw new BgError('BG_STATE', engineProblem);
  checkRunDir(config.root);
  const bg = new Bgproxy({ config, logger, accessLog: opts.accessLog ?? true });
  const readConfig = opts.readConfig ?? (() => loadConfig(config.root));
  // What serve runs is what the file held when it was last loaded; status says when it differs.
  const configFile = path.join(config.root, CONFIG_FILE);
  const fileStamp = (): string => {
    try {
      const st = statSync(configFile);
      return `${st.mtimeMs}:${st.size}`;
    } catch {
      return 'missing';
    }
  };
  let loaded = { at: new Date().toISOString(), stamp: fileStamp() };
  let server: FrontServer | null = null;
  const reload = async (): Promise<ReloadPlan> => {
    const stamp = fileStamp();
    const plan = await bg.reload(readConfig());
    loaded = { at: new Date().toISOString(), stamp };
    if (server) server.configure(bg.config.timeouts, bg.config.limits);
    if (h2 && bg.config.tls) h2.configure(bg.config.tls.h2, bg.config.timeouts);
    return plan;
  };
  // An edited file is checked as a reload would check it, so status does not promise that
  // `bgproxy reload` applies a change it would refuse (adding tls, a new port, invalid JSON).
  const reloadRefusal = (): string | null => {
    try {
      planReload(bg.config, readConfig());
      return null;
    } catch (err) {
      return (err as Error).message;
    }
  };
  const status = async (): Promise<Status> => {
    const changedSinceLoad = fileStamp() !== loaded.stamp;
    return {
      ...(await bg.status()),
      config: { file: configFile, loadedAt: loaded.at, changedSinceLoad, ...(changedSinceLoad ? { reloadRefusal: reloadRefusal() } : {}) },
    };
  };
  const control = new ControlServer(config.root, { ...controlHandlers(bg), status, reload: () => reload() }, logger);
  await control.listen();
  if (config.mode === 'proxy') {
    // Temp files are unlinked once open; only a crash between open and unlink leaves one.
    cleanTempDir(config.buffering.dir);
    server = createFrontServer(bg.handlers, config.timeouts, config.limits);
    const fd = opts.listenFd;
    try {
      const addr = await server.listen(fd === undefined ? config.listen : { fd });
      bg.listenAddress = formatListen({ host: addr.address, port: addr.port });
    } catch (err) {
      await control.close();
      throw await listenFailure(err, fd === undefined ? config.listen : fd, 'listen');
    }
  }
  let tlsServer: tls.Server | null = null;
  let h2: H2Front | null = null;
  if (server && bg.tls && config.tls) {
    const front = server;
    // The one hand-over from TLS to HTTP: every secure socket enters the front server as
    // a connection, so routing, timeouts, drain and in-flight accounting are the plain
    // listener's.
    // h2 connections are node:http2 sessions; each stream takes the same request path.
    const handlers = bg.handlers;
    const h2Front = new H2Front((req) => handlers.stream(req), config.tls.h2, config.timeouts);
    h2 = h2Front;
    tlsServer = bg.tls.createServer(
      (socket) => front.accept(socket),
      (socket) => h2Front.serve(socket),
    );
    front.adopt(tlsServer);
    const fd = opts.tlsListenFd;
    try {
      const addr = await listenOn(tlsServer, fd === undefined ? config.tls.listen : { fd });
      bg.tls.setListenAddress(formatListen({ host: addr.address, port: addr.port }), addr.port);
    } catch (err) {
      await server.close(0);
      await control.close();
      throw await listenFailure(err, fd === undefined ? config.tls.listen : fd, 'tls.listen');
    }
    // Both listeners are up: the CA can reach the HTTP-01 and TLS-ALPN-01 answers.
    bg.tls.start();
  }
  let metricsServer: MetricsServer | null = null;
  if (config.metrics && bg.metrics) {
    try {
      metricsServer = await startMetricsServer(bg.metrics, config.metrics.listen, logger);
    } catch (err) {
      // The TLS listener, adopted by the front server, closes with it.
      bg.tls?.close();
      await Promise.all([server?.close(0), h2?.close(0)]);
      await control.close();
      throw await listenFailure(err, config.metrics.listen, 'metrics.listen');
    }
  }
  const metricsListen = metricsServer ? formatListen({ host: metricsServer.address.address, port: metricsServer.address.port }) : null;
  const pidFile = path.join(config.root, 'run', 'bgproxy.pid');
  writeFileSync(pidFile, `${process.pid}\n`);
  logger.info(
    {
      event: 'listening',
      listen: bg.listenAddress,
      ...(bg.tls?.listenAddress ? { tlsListen: bg.tls.listenAddress } : {}),
      ...(metricsListen ? { metrics: `http://${metricsListen}/metrics` } : {}),
      ...(opts.listenFd !== undefined && server ? { activated: true } : {}),
      mode: config.mode,
      live: bg.roles.live,
      root: config.root,
    },
    bg.listenAddress ? `listening on ${bg.listenAddress}` : 'serving (nginx mode, no HTTP listener)',
  );

  // Apps start after the listener is up: requests meanwhile are held, not refused.
  void bg.startApps();

  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      logger.info({ event: 'shutdown' }, 'shutting down');
      const t0 = performance.now();
      const drainMs = bg.config.drainTimeoutMs;
      // A deploy under way ends now (its commands' groups stopped, next marked failed): left
      // to run, it would start an app after the apps were stopped, and keep serve alive.
      bg.interruptDeploy('bgproxy serve is stopping');
      // Clients first, apps after: a request that arrives on a kept connection while
      // closing still reaches a running app.
      bg.releaseHeld();
      // The TLS listener (adopted by the front server) stops accepting with the plain one;
      // a handshake still in progress ends within tls.handshakeTimeoutMs, and is then
      // drained like the rest.
      // h2 sessions get GOAWAY at once; their streams in flight finish alongside.
      const [closed] = await Promise.all([server ? server.close(drainMs) : { forced: false }, h2?.close(drainMs)]);
      await bg.close(drainMs);
      // The interrupted operation answers its client (the deploy command says what happened)
      // before the control socket closes.
      if (!(await bg.settled(SETTLE_MS))) logger.warn({ event: 'shutdown', waitedMs: SETTLE_MS }, 'an operation was still running at exit');
      await control.close();
      await metricsServer?.close();
      try {
        unlinkSync(pidFile);
      } catch {}
      logger.info({ event: 'stopped', ms: Math.round(performance.now() - t0), forced: closed.forced }, 'stopped');
    })();
    return stopping;
  };
  return { bg, listen: bg.listenAddress, tlsListen: bg.tls?.listenAddress ?? null, metricsListen, stop, reload };
}
