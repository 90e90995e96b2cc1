// The front door: route each request by Host to the target of its role at this instant,
// count it there, forward it, log it. Also the http.Server with its timeouts and the
// answers to requests Node's parser refuses.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net, { type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Color, Role, LimitsConfig, TimeoutsConfig } from '../config.js';
import type { Logger } from '../log.js';
import type { Forwarder } from './forward.js';
import type { Answer, Forward, Gate, RequestView, Verdict } from './gate.js';
import { prepareRequestHeaders } from './headers.js';
import { normalizeHost } from './host.js';
import type { Router } from './router.js';
import type { Target } from './target.js';

/** The defaults of config.limits. */
export const DEFAULT_LIMITS: LimitsConfig = { maxHeaders: 100, maxHeaderBytes: 16 * 1024, maxUrlBytes: 8192 };

export interface RouteTable {
  /** The target that `role` points at right now. */
  targetFor(role: Role): Target;
  /** The target of a color (a gate may send a request to the other color: canary). */
  targetOf(color: Color): Target;
}

export interface HandlerOptions {
  router: Router;
  table: RouteTable;
  forwarder: Forwarder;
  trustProxy: readonly string[];
  logger: Logger;
  /** Log one line per request (pino, asynchronous). */
  accessLog: boolean;
  limits?: LimitsConfig;
  /** Policies asked in order before a request is forwarded (see gate.ts). */
  gates?: readonly Gate[];
}

function plain(res: ServerResponse, status: number, body: string, close = false): void {
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    // A refused request may have an unread or untrusted body: never read past it.
    ...(close ? { connection: 'close' } : {}),
  });
  res.end(body);
}

function headerCount(raw: string[], lowerName: string): number {
  let n = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === lowerName.length && name.toLowerCase() === lowerName) n++;
  }
  return n;
}

/**
 * Why the body framing is refused, or null. Node's parser takes a Transfer-Encoding list
 * whose last coding is chunked ("gzip, chunked", or split over two headers) and TE on
 * HTTP/1.0; we forward only one plain "chunked", so anything else would reach the app
 * with a meaning it may read differently (RFC 9112 §6.1). CL+TE and bad CL are refused
 * by the parser already.
 */
function framingError(req: IncomingMessage): string | null {
  const te = req.headers['transfer-encoding'];
  if (te === undefined) return null;
  if (req.httpVersionMajor !== 1 || req.httpVersionMinor !== 1) return 'Transfer-Encoding needs HTTP/1.1';
  if (headerCount(req.rawHeaders, 'transfer-encoding') !== 1 || te.trim().toLowerCase() !== 'chunked') {
    return 'unsupported Transfer-Encoding';
  }
  return null;
}

/**
 * Finds the host to route on, and turns an absolute-form target (GET http://h/p) into
 * origin-form, whose host then wins over the Host header (RFC 9112 §3.2.2).
 */
function routeHost(req: IncomingMessage): string | null {
  const url = req.url ?? '';
  // HTTP/1.0 may omit Host (Node refuses that on 1.1): route it as an unknown host.
  if (req.headers.host === undefined && req.httpVersion === '1.0' && url.charCodeAt(0) === 47) return '';
  if (url.charCodeAt(0) !== 47 /* / */) {
    if (url === '*' && req.method === 'OPTIONS') return normalizeHost(req.headers.host);
    if (!/^https?:\/\//i.test(url)) return null;
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      return null;
    }
    if (parsed.username || parsed.password) return null;
    req.url = `${parsed.pathname}${parsed.search}`;
    req.headers.host = parsed.host;
  }
  if (headerCount(req.rawHeaders, 'host') > 1) return null;
  return normalizeHost(req.headers.host);
}

/** What a config reload may change in the handlers; requests from then on use it. */
export type HandlerSettings = Pick<HandlerOptions, 'router' | 'trustProxy' | 'limits'>;

function viewOf(req: IncomingMessage, host: string, route: Role, trusted: boolean, upgrade: boolean): RequestView {
  const socket = req.socket as Socket & { encrypted?: boolean; servername?: string | false };
  return {
    method: req.method ?? 'GET',
    path: req.url ?? '/',
    host,
    role: route,
    remoteAddress: socket.remoteAddress ?? '',
    trustedPeer: trusted,
    tls: socket.encrypted ? { servername: socket.servername || null } : null,
    upgrade,
    header: (name) => {
      const v = req.headers[name];
      return Array.isArray(v) ? v[0] : v;
    },
  };
}

/** Asks each gate in order: the first answer or wait wins; forward changes add up (null: none). */
function runGates(gates: readonly Gate[], view: RequestView, from = 0): Verdict | null {
  let fwd: Forward | null = null;
  for (let i = from; i < gates.length; i++) {
    const v = gates[i]!.check(view);
    if (v === null) continue;
    if (v.kind === 'answer') return v;
    if (v.kind === 'wait') {
      const prior = fwd;
      return {
        kind: 'wait',
        until: v.until.then((after) => {
          if (after !== null && after.kind !== 'forward') return after;
          const base = after === null ? prior : mergeForward(prior, after);
          const rest = runGates(gates, view, i + 1);
          if (rest === null) return base;
          return rest.kind === 'forward' ? mergeForward(base, rest) : rest;
        }),
      };
    }
    fwd = mergeForward(fwd, v);
  }
  return fwd;
}

function mergeForward(a: Forward | null, b: Forward): Forward {
  if (a === null) return b;
  return {
    kind: 'forward',
    color: b.color ?? a.color,
    stripRequestHeaders: [...(a.stripRequestHeaders ?? []), ...(b.stripRequestHeaders ?? [])],
    addResponseHeaders: [...(a.addResponseHeaders ?? []), ...(b.addResponseHeaders ?? [])],
  };
}

function answerHttp(res: ServerResponse, a: Answer, head: boolean): void {
  const headers: Array<[string, string]> = [['cache-control', 'no-store']];
  for (const [n, v] of a.headers ?? []) headers.push([n, v]);
  if (!headers.some(([n]) => n.toLowerCase() === 'content-type')) headers.push(['content-type', 'text/plain; charset=utf-8']);
  headers.push(['content-length', String(Buffer.byteLength(a.body))]);
  if (a.close) headers.push(['connection', 'close']);
  res.writeHead(a.status, headers.flat());
  res.end(head ? undefined : a.body);
}

function answerSocket(socket: Socket, a: Answer): void {
  let head = `HTTP/1.1 ${a.status} ${http.STATUS_CODES[a.status] ?? ''}\r\n`;
  for (const [n, v] of a.headers ?? []) head += `${n}: ${v}\r\n`;
  socket.end(`${head}Content-Length: ${Buffer.byteLength(a.body)}\r\nConnection: close\r\n\r\n${a.body}`);
}

export interface Handlers {
  request(req: IncomingMessage, res: ServerResponse): void;
  upgrade(req: IncomingMessage, socket: Socket, head: Buffer): void;
  configure(settings: HandlerSettings): void;
}

export function createHandlers(opts: HandlerOptions): Handlers {
  const { table, forwarder, logger } = opts;
  let router = opts.router;
  let { maxHeaders, maxUrlBytes: maxUrl } = opts.limits ?? DEFAULT_LIMITS;
  let trusted = trustedSet(opts.trustProxy);
  const gates = opts.gates ?? [];
  const access = logger.child({ component: 'access' });

  function configure(s: HandlerSettings): void {
    router = s.router;
    ({ maxHeaders, maxUrlBytes: maxUrl } = s.limits ?? DEFAULT_LIMITS);
    trusted = trustedSet(s.trustProxy);
  }

  /**
   * The checks every request and upgrade passes, in one place: limits, framing, Host, route.
   * Returns where it goes, or the refusal (status line and body) to answer with.
   */
  function admit(req: IncomingMessage): { host: string; route: Role; target: Target } | { status: number; text: string; reason: string } {
    if (req.rawHeaders.length > 2 * maxHeaders) return { status: 431, text: 'Request Header Fields Too Large', reason: 'too many header fields' };
    if ((req.url ?? '').length > maxUrl) return { status: 414, text: 'URI Too Long', reason: 'request target too long' };
    const framing = framingError(req);
    if (framing !== null) return { status: 400, text: 'Bad Request', reason: framing };
    const host = routeHost(req);
    if (host === null) return { status: 400, text: 'Bad Request', reason: 'bad or missing Host header' };
    const route = router.route(host);
    if (route === 'reject') return { status: 421, text: 'Misdirected Request', reason: 'unknown host' };
    return { host, route, target: table.targetFor(route) };
  }

  function request(req: IncomingMessage, res: ServerResponse): void {
    const started = performance.now();
    const a = admit(req);
    // 421 leaves the request well framed; other refusals close, so an unread body is never read as a request.
    if ('status' in a) return plain(res, a.status, `bgproxy: ${a.reason}\n`, a.status !== 421);
    const { host, route } = a;
    const remote = req.socket.remoteAddress ?? '';
    const isTrusted = trusted.has(remote);
    if (gates.length > 0) {
      const v = runGates(gates, viewOf(req, host, route, isTrusted, false));
      if (v !== null && v.kind === 'wait') {
        v.until.then(
          (after) => !res.destroyed && forward(req, res, host, route, isTrusted, started, after),
          () => !res.destroyed && plain(res, 503, 'bgproxy: unavailable\n', true),
        );
        return;
      }
      return forward(req, res, host, route, isTrusted, started, v);
    }
    forward(req, res, host, route, isTrusted, started, null);
  }

  function forward(req: IncomingMessage, res: ServerResponse, host: string, route: Role, isTrusted: boolean, started: number, v: Verdict | null): void {
    if (v !== null && v.kind === 'answer') return answerHttp(res, v, req.method === 'HEAD');
    const fwd = v !== null && v.kind === 'forward' ? v : null;
    const target = fwd?.color !== undefined ? table.targetOf(fwd.color) : table.targetFor(route);
    target.track(res, route);
    const remote = req.socket.remoteAddress ?? '';
    if (fwd?.stripRequestHeaders) for (const h of fwd.stripRequestHeaders) delete req.headers[h];
    if (fwd?.addResponseHeaders) {
      const add = fwd.addResponseHeaders;
      const writeHead = res.writeHead;
      res.writeHead = function (this: ServerResponse, ...args: Parameters<ServerResponse['writeHead']>) {
        for (const [n, val] of add) this.appendHeader(n, val);
        return writeHead.apply(this, args);
      } as ServerResponse['writeHead'];
    }
    prepareRequestHeaders(req, { remoteAddress: remote, trusted: isTrusted, proto: (req.socket as TLSSocket).encrypted ? 'https' : 'http' }, false);
    if (opts.accessLog) {
      const method = req.method;
      const path = req.url;
      res.once('close', () => {
        access.info({
          method,
          host,
          path,
          status: res.writableFinished ? res.statusCode : 0,
          color: target.color,
          ms: Math.round((performance.now() - started) * 10) / 10,
        });
      });
    }
    forwarder.web(req, res, target);
  }

  function upgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    // Errors on this socket before http-proxy attaches its own must not crash the process.
    socket.on('error', () => socket.destroy());
    const a = admit(req);
    if ('status' in a) {
      socket.end(`HTTP/1.1 ${a.status} ${a.text}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
      return;
    }
    const { host, route } = a;
    const remote = socket.remoteAddress ?? '';
    if (gates.length > 0) {
      const v = runGates(gates, viewOf(req, host, route, trusted.has(remote), true));
      if (v !== null && v.kind === 'wait') {
        v.until.then(
          (after) => !socket.destroyed && upgradeTo(req, socket, head, host, route, after),
          () => socket.destroy(),
        );
        return;
      }
      return upgradeTo(req, socket, head, host, route, v);
    }
    upgradeTo(req, socket, head, host, route, null);
  }

  function upgradeTo(req: IncomingMessage, socket: Socket, head: Buffer, host: string, route: Role, v: Verdict | null): void {
    if (v !== null && v.kind === 'answer') return answerSocket(socket, v);
    const fwd = v !== null && v.kind === 'forward' ? v : null;
    const target = fwd?.color !== undefined ? table.targetOf(fwd.color) : table.targetFor(route);
    if (fwd?.stripRequestHeaders) for (const h of fwd.stripRequestHeaders) delete req.headers[h];
    target.trackSocket(socket);
    const remote = socket.remoteAddress ?? '';
    prepareRequestHeaders(req, { remoteAddress: remote, trusted: trusted.has(remote), proto: (socket as TLSSocket).encrypted ? 'https' : 'http' }, true);
    if (opts.accessLog) access.info({ method: req.method, host, path: req.url, status: 101, color: target.color, upgrade: true });
    forwarder.ws(req, socket, head, target);
  }

  return { request, upgrade, configure };
}

function trustedSet(addresses: readonly string[]): Set<string> {
  return new Set(addresses.flatMap((a) => [a, `::ffff:${a}`]));
}

const CLIENT_ERROR_STATUS: Record<string, string> = {
  HPE_HEADER_OVERFLOW: '431 Request Header Fields Too Large',
  ERR_HTTP_REQUEST_TIMEOUT: '408 Request Timeout',
  HPE_HEADERS_TIMEOUT: '408 Request Timeout',
};

/**
 * How often Node checks headersTimeout and requestTimeout. Its default (30 s) lets a
 * slowloris socket live up to 30 s past a 20 s header timeout; a quarter of the shortest
 * timeout (at most 1 s) keeps the cut close to what is configured, for one cheap sweep.
 */
export function checkIntervalMs(timeouts: TimeoutsConfig): number {
  const shortest = Math.min(timeouts.headersMs, timeouts.requestMs > 0 ? timeouts.requestMs : Number.POSITIVE_INFINITY);
  return Math.max(25, Math.min(1000, Math.floor(shortest / 4)));
}

export function createProxyHttpServer(handlers: Pick<Handlers, 'request' | 'upgrade'>, timeouts: TimeoutsConfig, limits: LimitsConfig = DEFAULT_LIMITS): http.Server {
  const tracking: Tracking = { sockets: new Set(), upgraded: new WeakSet(), stopping: false };
  const server = http.createServer(
    {
      connectionsCheckingInterval: checkIntervalMs(timeouts),
      requireHostHeader: true,
      insecureHTTPParser: false,
      maxHeaderSize: limits.maxHeaderBytes,
    },
    (req, res) => {
      // While closing, every response is its connection's last (see closeGracefully).
      if (tracking.stopping) res.shouldKeepAlive = false;
      handlers.request(req, res);
    },
  );
  applyServerSettings(server, timeouts, limits);
  trackConnections(server, tracking);
  server.on('upgrade', handlers.upgrade);
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (socket.destroyed) return;
    if (!socket.writable || err.code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    const status = CLIENT_ERROR_STATUS[err.code ?? ''] ?? '400 Bad Request';
    socket.end(`HTTP/1.1 ${status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
  });
  return server;
}

/**
 * The server's timeouts and header count limit; at creation and again at a config reload
 * (Node reads them per connection and at each check). The check interval and the header
 * size limit are fixed at creation.
 */
export function applyServerSettings(server: http.Server, timeouts: TimeoutsConfig, limits: LimitsConfig): void {
  server.requestTimeout = timeouts.requestMs;
  // Node refuses a header timeout above the request timeout.
  server.headersTimeout = timeouts.requestMs > 0 ? Math.min(timeouts.headersMs, timeouts.requestMs) : timeouts.headersMs;
  server.keepAliveTimeout = timeouts.keepAliveMs;
  // Node keeps the first maxHeadersCount fields and silently drops the rest: keep one more
  // than the limit, so a request that fills it is answered 431 instead of forwarded mutilated.
  server.maxHeadersCount = limits.maxHeaders + 1;
}

interface Tracking {
  sockets: Set<Socket>;
  /** Connections that became websockets (or another upgrade). */
  upgraded: WeakSet<Socket>;
  stopping: boolean;
}

const TRACKING = Symbol('bgproxy.tracking');
type TrackedServer = http.Server & { [TRACKING]?: Tracking };
/** Node sets socket._httpMessage to the response in progress on it, null between requests. */
type HttpSocket = Socket & { _httpMessage?: ServerResponse | null };

/**
 * Follows the connections of `server` (per connection, nothing per request: a second
 * 'request' listener and a 'close' listener per response cost 15% of throughput), so a
 * graceful close can find the idle ones and the responses still to be answered.
 */
function trackConnections(server: TrackedServer, t: Tracking): void {
  server[TRACKING] = t;
  server.on('connection', (socket: Socket) => {
    t.sockets.add(socket);
    socket.once('close', () => t.sockets.delete(socket));
  });
  server.prependListener('upgrade', (req: IncomingMessage) => t.upgraded.add(req.socket));
}

/**
 * Clears the interval Node's http.Server runs for headersTimeout/requestTimeout, which only
 * http's own close() clears (it is unref'd: a leftover only costs a wake-up per interval).
 */
function stopTimeoutChecks(server: http.Server): void {
  const key = Object.getOwnPropertySymbols(server).find((k) => k.description === 'http.server.connectionsCheckingInterval');
  if (key) clearInterval((server as unknown as Record<symbol, NodeJS.Timeout>)[key]);
}

/** How long a keep-alive connection must have been idle before a graceful close ends it. */
export const IDLE_GRACE_MS = 500;

/**
 * Stops accepting (a socket passed in by systemd stays open for the next serve) and lets
 * every connection finish its requests: each response from now on says `Connection: close`
 * (so keep-alive clients move to a new connection rather than write into one being
 * closed), connections idle for IDLE_GRACE_MS are closed, websockets once no HTTP request
 * is in flight. Resolves once every connection is gone, or at `timeoutMs` (then they are cut).
 */
export function closeGracefully(server: http.Server, timeoutMs: number, idleGraceMs = IDLE_GRACE_MS): Promise<{ forced: boolean }> {
  const t = (server as TrackedServer)[TRACKING];
  if (!t) throw new Error('closeGracefully needs a server from createProxyHttpServer');
  t.stopping = true;
  const idleSince = new Map<Socket, number>();
  return new Promise((resolve) => {
    let forced = false;
    const sweep = (): void => {
      const now = performance.now();
      let httpBusy = false;
      for (const socket of t.sockets) if (!t.upgraded.has(socket) && (socket as HttpSocket)._httpMessage) httpBusy = true;
      for (const socket of t.sockets) {
        if (t.upgraded.has(socket)) {
          if (!httpBusy) socket.destroy();
          continue;
        }
        const res = (socket as HttpSocket)._httpMessage;
        if (res) {
          // Answered after the stop began: this response is the connection's last.
          if (!res.headersSent) res.shouldKeepAlive = false;
          idleSince.delete(socket);
          continue;
        }
        const since = idleSince.get(socket);
        if (since === undefined) idleSince.set(socket, now);
        else if (now - since >= idleGraceMs) socket.destroy();
      }
    };
    let closed = false;
    const finish = (): void => {
      // Connections handed in by another listener (TLS: emit('connection')) are not
      // counted by net's close: wait for those too.
      if (!closed || t.sockets.size > 0) return;
      clearInterval(timer);
      clearTimeout(deadline);
      stopTimeoutChecks(server);
      resolve({ forced });
    };
    const timer = setInterval(() => {
      sweep();
      finish();
    }, 50);
    const deadline = setTimeout(() => {
      forced = true;
      for (const socket of t.sockets) socket.destroy();
    }, timeoutMs);
    // net's close, not http's: since Node 19 http.Server#close also closes every idle
    // keep-alive connection at once, the race with a client writing its next request.
    net.Server.prototype.close.call(server, () => {
      closed = true;
      finish();
    });
    sweep();
  });
}
