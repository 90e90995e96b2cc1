// bgproxy.json: parsed and validated once, at the boundary. After parseConfig nothing
// reads raw JSON; every component gets this frozen object.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseJsonFile } from './config-json.js';
import {
  describe,
  fail,
  int,
  type Listen,
  num,
  obj,
  oneOf,
  opt,
  parseHostName,
  parseListen,
  parsePort,
  type Raw,
  str,
  strList,
} from './config-readers.js';
import { BgError } from './errors.js';
import { type AccessConfig, parseAccess } from './traffic/config.js';

export { formatListen, type Listen, parseHostName, parseListen, parsePort } from './config-readers.js';
export type { AccessConfig, AccessRule } from './traffic/config.js';

export const COLORS = ['blue', 'green'] as const;
export type Color = (typeof COLORS)[number];
export type Role = 'live' | 'next';

export function otherColor(color: Color): Color {
  return color === 'blue' ? 'green' : 'blue';
}

export interface HealthConfig {
  path: string;
  intervalMs: number;
  timeoutMs: number;
  /** Consecutive failed checks before a running color is marked unhealthy. */
  unhealthyAfter: number;
}

export interface HooksConfig {
  afterInstall: string[];
  beforeCutover: string[];
  afterCutover: string[];
  timeoutMs: number;
}

export interface WarmupConfig {
  paths: string[];
  concurrency: number;
  timeoutMs: number;
}

export interface AppConfig {
  repo: string | null;
  dir: string;
  install: string[];
  /** Per install command. */
  installTimeoutMs: number;
  start: string | null;
  env: Record<string, string>;
  health: HealthConfig;
  startTimeoutMs: number;
  stopSignal: NodeJS.Signals;
  stopTimeoutMs: number;
  /** Size cap of ROOT/logs/COLOR.log before it is rotated to COLOR.log.1. */
  logMaxBytes: number;
  hooks: HooksConfig;
  warmup: WarmupConfig;
}

export interface TimeoutsConfig {
  /** Time a client has to send the request headers (slowloris guard). */
  headersMs: number;
  /** Time a client has to send the whole request. */
  requestMs: number;
  /** Idle time of a client keep-alive connection; above the 60 s a CDN or nginx in front may use. */
  keepAliveMs: number;
  /**
   * Idle time of a pooled connection to an app before bgproxy drops it; must stay below the
   * app's own keep-alive timeout (gunicorn gthread 2 s, Node 5 s) or a request may be written
   * to a connection the app is closing.
   */
  upstreamIdleMs: number;
  /**
   * Time a client may take no byte of an answer (nginx's send_timeout) before it is cut and
   * what was buffered for it freed; 0: never.
   */
  sendMs: number;
}

export interface LimitsConfig {
  /** Most header fields a request may carry; more gets 431 (Apache's LimitRequestFields). */
  maxHeaders: number;
  /** Largest request head (request line + headers) in bytes; larger gets 431. */
  maxHeaderBytes: number;
  /** Longest request target; longer gets 414 (nginx's 8 kB request-line buffer). */
  maxUrlBytes: number;
  /** Most requests held while paused (bgproxy pause); past it, 503. */
  pausedRequests: number;
  /** Largest request body; larger gets 413 before anything reaches the app (0: no limit). */
  maxBodyBytes: number;
}

/** Slow clients and buffering (see README "Slow clients and buffering"). */
export interface BufferingConfig {
  /** Read request bodies whole before the app is contacted (nginx proxy_request_buffering). */
  requests: boolean;
  /** Absorb responses as fast as the app writes them (nginx proxy_buffering). */
  responses: boolean;
  /** Bytes held in memory per request body and per response before a temp file takes the rest. */
  memoryBytes: number;
  /** Most bytes all temp files together may hold (uploads past it get 503, responses wait). */
  maxTempBytes: number;
  /** Absolute directory of the temp files (default ROOT/run/tmp). */
  dir: string;
}

export interface WatchConfig {
  /** 0 = off; otherwise how long after a cutover the new live color is watched. */
  watchMs: number;
  /** Share of 5xx responses (0..1) above which the watch rolls back. */
  maxErrorRate: number;
  /** Minimum requests seen before the rate is judged. */
  minRequests: number;
}

export interface NginxConfig {
  testCommand: string;
  reloadCommand: string;
  verifyUrl: string | null;
  /** nginx's master pid file, to find its old workers after a reload. */
  pidFile: string | null;
  /** Idle keep-alive connections to each color's app that every nginx worker keeps (0: none). */
  upstreamKeepalive: number;
}

export interface OwnCertificate {
  /** Absolute paths (relative ones resolve against the root). */
  cert: string;
  key: string;
}

export interface AcmeConfig {
  email: string | null;
  /** The CA's directory URL ("production" and "staging" name Let's Encrypt's). */
  directory: string;
  /** A PEM file of CA certificates to trust for the directory (a private CA); null: the system's. */
  caBundle: string | null;
  /** Which challenge bgproxy answers: http-01 on the plain listener, tls-alpn-01 on the TLS one; auto: http-01 first. */
  challenge: 'auto' | 'http-01' | 'tls-alpn-01';
  /** DNS servers ("IP[:PORT]") asked whether a host resolves before ordering; empty: the system's resolver. */
  dnsServers: string[];
}

export interface TlsConfig {
  listen: Listen;
  /** 308 from http to https for the hosts that have a certificate (the ACME challenge path excepted). */
  redirectHttp: boolean;
  /** Strict-Transport-Security max-age in seconds on HTTPS responses; 0: none (opt-in). */
  hstsMaxAge: number;
  /** Time a client has to finish the TLS handshake. */
  handshakeTimeoutMs: number;
  /** ALPN offers h2 besides http/1.1; h2 streams take the HTTP/1.1 request path. */
  http2: boolean;
  /** HTTP/2 limits per session (SETTINGS the server advertises and enforces). */
  h2: { maxConcurrentStreams: number; maxHeaderListSize: number };
  acme: AcmeConfig | null;
  certificates: OwnCertificate[];
}

export interface Config {
  /** Absolute path of the root directory. */
  root: string;
  listen: Listen;
  hosts: { live: string[]; next: string[] };
  unknownHost: 'live' | 'reject';
  colors: Record<Color, { port: number }>;
  app: AppConfig;
  drainTimeoutMs: number;
  holdMs: number;
  upstreamTimeoutMs: number;
  trustProxy: string[];
  timeouts: TimeoutsConfig;
  limits: LimitsConfig;
  buffering: BufferingConfig;
  watch: WatchConfig;
  mode: 'proxy' | 'nginx';
  nginx: NginxConfig;
  /** Who may reach the live and next hosts (client CIDRs, basic auth); null rules: open. */
  access: AccessConfig;
  /** HTTPS on the front door; null: plain HTTP only. */
  tls: TlsConfig | null;
}

export const CONFIG_FILE = 'bgproxy.json';

/** The config in force now: a reload may replace it between two calls. */
export type ConfigSource = () => Readonly<Config>;

export const DEFAULTS = {
  listen: '0.0.0.0:80',
  bluePort: 8888,
  greenPort: 8889,
} as const;

const SIGNALS = ['SIGTERM', 'SIGINT', 'SIGQUIT', 'SIGHUP', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH'] as const;

function parseApp(v: Raw): AppConfig {
  const o = obj(v ?? {}, 'app', [
    'repo',
    'dir',
    'install',
    'installTimeoutMs',
    'start',
    'env',
    'health',
    'startTimeoutMs',
    'stopSignal',
    'stopTimeoutMs',
    'logMaxBytes',
    'hooks',
    'warmup',
  ]);
  const dir = opt(o, 'dir', 'app', (x, k) => str(x, k, { nonEmpty: true }), '.');
  if (path.isAbsolute(dir) || path.normalize(dir).split(path.sep).includes('..')) {
    fail('app.dir', 'must be a relative path inside the repo');
  }
  const envRaw = obj(o.env ?? {}, 'app.env', Object.keys((o.env as object) ?? {}));
  const env: Record<string, string> = {};
  for (const [k, val] of Object.entries(envRaw)) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) fail(`app.env.${k}`, 'not a valid environment variable name');
    env[k] = typeof val === 'number' || typeof val === 'boolean' ? String(val) : str(val, `app.env.${k}`);
  }
  const h = obj(o.health ?? {}, 'app.health', ['path', 'intervalMs', 'timeoutMs', 'unhealthyAfter']);
  const healthPath = opt(h, 'path', 'app.health', (x, k) => str(x, k), '/');
  if (!healthPath.startsWith('/')) fail('app.health.path', 'must start with "/"');
  const hooks = obj(o.hooks ?? {}, 'app.hooks', ['afterInstall', 'beforeCutover', 'afterCutover', 'timeoutMs']);
  const warm = obj(o.warmup ?? {}, 'app.warmup', ['paths', 'concurrency', 'timeoutMs']);
  const warmPaths = opt(warm, 'paths', 'app.warmup', strList, []);
  warmPaths.forEach((p, i) => {
    if (!p.startsWith('/')) fail(`app.warmup.paths[${i}]`, 'must start with "/"');
  });
  return {
    repo: opt<string | null>(o, 'repo', 'app', (x, k) => str(x, k, { nonEmpty: true }), null),
    dir,
    install: opt(o, 'install', 'app', strList, []),
    installTimeoutMs: opt(o, 'installTimeoutMs', 'app', (x, k) => int(x, k, 1000, 24 * 3_600_000), 1_800_000),
    start: opt<string | null>(o, 'start', 'app', (x, k) => (x === null ? null : str(x, k, { nonEmpty: true })), null),
    env,
    health: {
      path: healthPath,
      intervalMs: opt(h, 'intervalMs', 'app.health', (x, k) => int(x, k, 50, 3_600_000), 1000),
      timeoutMs: opt(h, 'timeoutMs', 'app.health', (x, k) => int(x, k, 10, 600_000), 2000),
      unhealthyAfter: opt(h, 'unhealthyAfter', 'app.health', (x, k) => int(x, k, 1, 100), 3),
    },
    startTimeoutMs: opt(o, 'startTimeoutMs', 'app', (x, k) => int(x, k, 100, 3_600_000), 60_000),
    stopSignal: opt(o, 'stopSignal', 'app', (x, k) => oneOf(x, k, SIGNALS), 'SIGTERM'),
    stopTimeoutMs: opt(o, 'stopTimeoutMs', 'app', (x, k) => int(x, k, 0, 3_600_000), 30_000),
    logMaxBytes: opt(o, 'logMaxBytes', 'app', (x, k) => int(x, k, 1024, 2 ** 40), 10 * 1024 * 1024),
    hooks: {
      afterInstall: opt(hooks, 'afterInstall', 'app.hooks', strList, []),
      beforeCutover: opt(hooks, 'beforeCutover', 'app.hooks', strList, []),
      afterCutover: opt(hooks, 'afterCutover', 'app.hooks', strList, []),
      timeoutMs: opt(hooks, 'timeoutMs', 'app.hooks', (x, k) => int(x, k, 100, 24 * 3_600_000), 600_000),
    },
    warmup: {
      paths: warmPaths,
      concurrency: opt(warm, 'concurrency', 'app.warmup', (x, k) => int(x, k, 1, 256), 4),
      timeoutMs: opt(warm, 'timeoutMs', 'app.warmup', (x, k) => int(x, k, 100, 3_600_000), 10_000),
    },
  };
}

const TOP_KEYS = [
  'listen',
  'hosts',
  'unknownHost',
  'colors',
  'app',
  'drainTimeoutMs',
  'holdMs',
  'upstreamTimeoutMs',
  'trustProxy',
  'timeouts',
  'limits',
  'buffering',
  'watch',
  'mode',
  'nginx',
  'access',
  'tls',
] as const;

export const ACME_DIRECTORIES = {
  production: 'https://acme-v02.api.letsencrypt.org/directory',
  staging: 'https://acme-staging-v02.api.letsencrypt.org/directory',
} as const;

function parseTls(v: Raw, root: string, listen: Listen, mode: 'proxy' | 'nginx'): TlsConfig | null {
  if (v === undefined || v === null) return null;
  const o = obj(v, 'tls', ['listen', 'redirectHttp', 'hstsMaxAge', 'handshakeTimeoutMs', 'http2', 'h2', 'acme', 'certificates']);
  if (mode === 'nginx') fail('tls', 'nginx mode: nginx terminates TLS; remove tls or use proxy mode');
  const tlsListen = opt(o, 'listen', 'tls', parseListen, parseListen('0.0.0.0:443'));
  if (tlsListen.port !== 0 && tlsListen.port === listen.port) fail('tls.listen', `port ${tlsListen.port} is also the plain listen port`);
  const certs = opt(o, 'certificates', 'tls', (x, k) => (Array.isArray(x) ? x : fail(k, 'must be a list')), []);
  const certificates = certs.map((c, i): OwnCertificate => {
    const co = obj(c, `tls.certificates[${i}]`, ['cert', 'key']);
    const file = (k: 'cert' | 'key'): string =>
      path.resolve(root, str(co[k] ?? fail(`tls.certificates[${i}].${k}`, 'missing'), `tls.certificates[${i}].${k}`, { nonEmpty: true }));
    return { cert: file('cert'), key: file('key') };
  });
  let acme: AcmeConfig | null = null;
  if (o.acme !== undefined && o.acme !== null) {
    const a = obj(o.acme, 'tls.acme', ['email', 'directory', 'caBundle', 'challenge', 'dnsServers']);
    const email = opt<string | null>(a, 'email', 'tls.acme', (x, k) => str(x, k, { nonEmpty: true }), null);
    if (email !== null && !/^[^@\s]+@[^@\s]+$/.test(email)) fail('tls.acme.email', `not an email address: ${describe(email)}`);
    const dir = opt(a, 'directory', 'tls.acme', (x, k) => str(x, k, { nonEmpty: true }), 'production');
    const directory = dir in ACME_DIRECTORIES ? ACME_DIRECTORIES[dir as keyof typeof ACME_DIRECTORIES] : dir;
    if (!/^https:\/\/[^\s]+$/.test(directory)) fail('tls.acme.directory', `must be "production", "staging" or an https URL, got ${describe(dir)}`);
    const dnsServers = opt(a, 'dnsServers', 'tls.acme', strList, []);
    dnsServers.forEach((d, i) => {
      if (!/^(\[[0-9a-fA-F:.]+\]|[0-9.]+)(:\d+)?$|^[0-9a-fA-F:]+$/.test(d)) fail(`tls.acme.dnsServers[${i}]`, `not "IP" or "IP:PORT": ${describe(d)}`);
    });
    acme = {
      email,
      directory,
      caBundle: opt<string | null>(a, 'caBundle', 'tls.acme', (x, k) => (x === null ? null : path.resolve(root, str(x, k, { nonEmpty: true }))), null),
      challenge: opt(a, 'challenge', 'tls.acme', (x, k) => oneOf(x, k, ['auto', 'http-01', 'tls-alpn-01'] as const), 'auto'),
      dnsServers,
    };
  }
  const h2o = o.h2 === undefined || o.h2 === null ? {} : obj(o.h2, 'tls.h2', ['maxConcurrentStreams', 'maxHeaderListSize']);
  const h2 = {
    maxConcurrentStreams: opt(h2o, 'maxConcurrentStreams', 'tls.h2', (x, k) => int(x, k, 1, 10_000), 100),
    maxHeaderListSize: opt(h2o, 'maxHeaderListSize', 'tls.h2', (x, k) => int(x, k, 1024, 1024 * 1024), 65_536),
  };
  return {
    listen: tlsListen,
    redirectHttp: opt(o, 'redirectHttp', 'tls', (x, k) => (typeof x === 'boolean' ? x : fail(k, `must be true or false, got ${describe(x)}`)), true),
    hstsMaxAge: opt(o, 'hstsMaxAge', 'tls', (x, k) => int(x, k, 0, 2 * 365 * 86_400), 0),
    handshakeTimeoutMs: opt(o, 'handshakeTimeoutMs', 'tls', (x, k) => int(x, k, 100, 600_000), 10_000),
    http2: opt(o, 'http2', 'tls', (x, k) => (typeof x === 'boolean' ? x : fail(k, `must be true or false, got ${describe(x)}`)), true),
    h2,
    acme,
    certificates,
  };
}

/** Validates raw JSON (already parsed) for the root `root`. Throws BG_CONFIG naming the key. */
export function parseConfig(raw: Raw, root: string): Readonly<Config> {
  const o = obj(raw, '', TOP_KEYS);
  const hostsRaw = obj(o.hosts ?? {}, 'hosts', ['live', 'next']);
  const hostList = (k: 'live' | 'next'): string[] => {
    const list = opt(hostsRaw, k, 'hosts', (x, key) => (Array.isArray(x) ? x : fail(key, 'must be a list')), []);
    const out = list.map((h, i) => parseHostName(h, `hosts.${k}[${i}]`));
    return [...new Set(out)];
  };
  const live = hostList('live');
  const next = hostList('next');
  for (const h of live) if (next.includes(h)) fail('hosts', `"${h}" is in both hosts.live and hosts.next`);

  const colorsRaw = obj(o.colors ?? {}, 'colors', COLORS);
  const port = (c: Color, dflt: number): number => {
    const co = obj(colorsRaw[c] ?? {}, `colors.${c}`, ['port']);
    return opt(co, 'port', `colors.${c}`, (x, k) => parsePort(x, k, false, false), dflt);
  };
  const colors = { blue: { port: port('blue', DEFAULTS.bluePort) }, green: { port: port('green', DEFAULTS.greenPort) } };
  if (colors.blue.port === colors.green.port) fail('colors', `blue and green use the same port ${colors.blue.port}`);

  const listen = opt(o, 'listen', '', parseListen, parseListen(DEFAULTS.listen));
  const mode = opt(o, 'mode', '', (x, k) => oneOf(x, k, ['proxy', 'nginx'] as const), 'proxy');
  if (mode === 'proxy' && listen.port !== 0 && (listen.port === colors.blue.port || listen.port === colors.green.port)) {
    fail('listen', `port ${listen.port} is also a color's port`);
  }
  if (mode === 'nginx' && listen.port === 0) fail('listen', 'nginx mode needs the real port nginx listens on, not 0');
  if (mode === 'nginx' && live.length === 0) fail('hosts.live', 'nginx mode needs at least one live host for its server block');
  const t = obj(o.timeouts ?? {}, 'timeouts', ['headersMs', 'requestMs', 'keepAliveMs', 'upstreamIdleMs', 'sendMs']);
  const w = obj(o.watch ?? {}, 'watch', ['watchMs', 'maxErrorRate', 'minRequests']);
  const l = obj(o.limits ?? {}, 'limits', ['maxHeaders', 'maxHeaderBytes', 'maxUrlBytes', 'pausedRequests', 'maxBodyBytes']);
  const limits: LimitsConfig = {
    maxHeaders: opt(l, 'maxHeaders', 'limits', (x, k) => int(x, k, 10, 1000), 100),
    maxHeaderBytes: opt(l, 'maxHeaderBytes', 'limits', (x, k) => int(x, k, 1024, 1024 * 1024), 16 * 1024),
    maxUrlBytes: opt(l, 'maxUrlBytes', 'limits', (x, k) => int(x, k, 256, 1024 * 1024), 8192),
    pausedRequests: opt(l, 'pausedRequests', 'limits', (x, k) => int(x, k, 0, 1_000_000), 10_000),
    // 64 MiB: the uploads of a typical app fit (nginx's 1 MB is a frequent complaint), a runaway one does not.
    maxBodyBytes: opt(l, 'maxBodyBytes', 'limits', (x, k) => int(x, k, 0, Number.MAX_SAFE_INTEGER), 64 * 1024 * 1024),
  };
  const bf = obj(o.buffering ?? {}, 'buffering', ['requests', 'responses', 'memoryBytes', 'maxTempBytes', 'dir']);
  const bool = (x: unknown, k: string): boolean => (typeof x === 'boolean' ? x : fail(k, `must be true or false, got ${describe(x)}`));
  const buffering: BufferingConfig = {
    requests: opt(bf, 'requests', 'buffering', bool, true),
    responses: opt(bf, 'responses', 'buffering', bool, true),
    memoryBytes: opt(bf, 'memoryBytes', 'buffering', (x, k) => int(x, k, 4096, 64 * 1024 * 1024), 64 * 1024),
    maxTempBytes: opt(bf, 'maxTempBytes', 'buffering', (x, k) => int(x, k, 0, Number.MAX_SAFE_INTEGER), 1024 * 1024 * 1024),
    dir: path.resolve(root, opt(bf, 'dir', 'buffering', (x, k) => str(x, k, { nonEmpty: true }), path.join('run', 'tmp'))),
  };
  if (limits.maxUrlBytes >= limits.maxHeaderBytes) fail('limits.maxUrlBytes', 'must be below limits.maxHeaderBytes (the URL is part of the head)');
  const n = obj(o.nginx ?? {}, 'nginx', ['testCommand', 'reloadCommand', 'verifyUrl', 'pidFile', 'upstreamKeepalive']);
  const trustProxy = opt(o, 'trustProxy', '', strList, []);
  trustProxy.forEach((a, i) => {
    if (!/^[0-9a-fA-F:.]+$/.test(a)) fail(`trustProxy[${i}]`, `not an IP address: ${describe(a)}`);
  });
  const verifyUrl = opt<string | null>(n, 'verifyUrl', 'nginx', (x, k) => str(x, k, { nonEmpty: true }), null);
  if (verifyUrl !== null && !/^https?:\/\/[^\s]+$/.test(verifyUrl)) fail('nginx.verifyUrl', 'must be an http(s) URL');

  const config: Config = {
    root: path.resolve(root),
    listen,
    hosts: { live, next },
    unknownHost: opt(o, 'unknownHost', '', (x, k) => oneOf(x, k, ['live', 'reject'] as const), 'live'),
    colors,
    app: parseApp(o.app),
    drainTimeoutMs: opt(o, 'drainTimeoutMs', '', (x, k) => int(x, k, 0, 3_600_000), 30_000),
    holdMs: opt(o, 'holdMs', '', (x, k) => int(x, k, 0, 600_000), 5_000),
    upstreamTimeoutMs: opt(o, 'upstreamTimeoutMs', '', (x, k) => int(x, k, 100, 3_600_000), 60_000),
    trustProxy,
    timeouts: {
      headersMs: opt(t, 'headersMs', 'timeouts', (x, k) => int(x, k, 100, 600_000), 20_000),
      requestMs: opt(t, 'requestMs', 'timeouts', (x, k) => int(x, k, 0, 24 * 3_600_000), 300_000),
      keepAliveMs: opt(t, 'keepAliveMs', 'timeouts', (x, k) => int(x, k, 100, 3_600_000), 75_000),
      upstreamIdleMs: opt(t, 'upstreamIdleMs', 'timeouts', (x, k) => int(x, k, 100, 600_000), 500),
      sendMs: opt(t, 'sendMs', 'timeouts', (x, k) => int(x, k, 0, 24 * 3_600_000), 60_000),
    },
    limits,
    buffering,
    watch: {
      watchMs: opt(w, 'watchMs', 'watch', (x, k) => int(x, k, 0, 24 * 3_600_000), 0),
      maxErrorRate: opt(w, 'maxErrorRate', 'watch', (x, k) => num(x, k, 0, 1), 0.05),
      minRequests: opt(w, 'minRequests', 'watch', (x, k) => int(x, k, 1, 1_000_000), 20),
    },
    mode,
    nginx: {
      testCommand: opt(n, 'testCommand', 'nginx', (x, k) => str(x, k, { nonEmpty: true }), 'nginx -t'),
      reloadCommand: opt(n, 'reloadCommand', 'nginx', (x, k) => str(x, k, { nonEmpty: true }), 'nginx -s reload'),
      verifyUrl,
      pidFile: opt<string | null>(n, 'pidFile', 'nginx', (x, k) => str(x, k, { nonEmpty: true }), null),
      upstreamKeepalive: opt(n, 'upstreamKeepalive', 'nginx', (x, k) => int(x, k, 0, 1024), 16),
    },
    access: parseAccess(o.access, mode),
    tls: parseTls(o.tls, root, listen, mode),
  };
  return deepFreeze(config);
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

/** Reads and validates ROOT/bgproxy.json. */
export function loadConfig(root: string): Readonly<Config> {
  const file = path.join(root, CONFIG_FILE);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new BgError('BG_CONFIG', `no ${CONFIG_FILE} in ${path.resolve(root)} (run bgproxy init, or pass --root)`);
    throw new BgError('BG_CONFIG', `cannot read ${file}: ${(err as Error).message}`);
  }
  return parseConfig(parseJsonFile(text, file), root);
}

/** Where the root is: --root, else BGPROXY_ROOT, else the current directory. */
export function resolveRoot(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(flag ?? env.BGPROXY_ROOT ?? process.cwd());
}

/** The environment an app process or command of `color` runs with (app.env may reference these). */
export function appEnv(
  config: Config,
  color: Color,
  extra: Record<string, string> = {},
): Record<string, string> {
  const base: Record<string, string> = {
    PORT: String(config.colors[color].port),
    BG_COLOR: color,
    BG_ENV: path.join(config.root, color, 'env'),
    BG_ROOT: config.root,
    ...extra,
  };
  const out: Record<string, string> = { ...base };
  for (const [k, v] of Object.entries(config.app.env)) {
    out[k] = v.replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (m, name: string) => base[name] ?? process.env[name] ?? m);
  }
  return out;
}
