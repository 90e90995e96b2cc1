// The front door's request logic: the checks every request passes (limits, framing, Host),
// the route by Host to the target of its role at this instant, the gates (TLS, traffic
// controls), then the exchange that forwards it, and the access log line. Requests come
// from the proxy's own wire connections (front.ts) or, when a host embeds bgproxy, from a
// Node http.Server's IncomingMessage/ServerResponse; both take the same path.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Color, LimitsConfig, Role, TimeoutsConfig } from '../config.js';
import type { Logger } from '../log.js';
import { BgError } from '../errors.js';
import type { RequestCounts } from '../metrics/requests.js';
import { AccessLog } from './access-log.js';
import { type BodyKind, Exchange, type ExchangeOwner, type ExchangeSettings, type Framing, type Sink, type Source } from './exchange.js';
import { type FrontConn, type FrontHandlers, type FrontRequest, FrontServer, headerValue, type Refused, type RequestHead, tooLarge } from './front.js';
import type { H2Request } from './h2/stream.js';
import type { Answer, Forward, Gate, RequestView, Verdict, Wait } from './gate.js';
import { headBytes, upstreamHead } from './headers.js';
import { normalizeHost } from './host.js';
import { engineProblem } from './llhttp.js';
import { requestIds } from './request-id.js';
import type { Router } from './router.js';
import type { Target } from './target.js';
import { statusLine } from './status.js';
import { lingerEnd, tunnel } from './tunnel.js';

export { checkIntervalMs, FrontServer, IDLE_GRACE_MS } from './front.js';

/** The defaults of config.limits. */
export const DEFAULT_LIMITS: LimitsConfig = { maxHeaders: 100, maxHeaderBytes: 16 * 1024, maxUrlBytes: 8192, pausedRequests: 10_000, maxBodyBytes: 64 * 1024 * 1024 };

export interface RouteTable {
  /** The target that `role` points at right now. */
  targetFor(role: Role): Target;
  /** The target of a color (a gate may send a request to the other color: canary). */
  targetOf(color: Color): Target;
}

export interface HandlerOptions {
  router: Router;
  table: RouteTable;
  /** Upstream timeout, hold time, replay cap: read per request, so a reload applies at once. */
  exchange: ExchangeSettings;
  trustProxy: readonly string[];
  logger: Logger;
  /** Log one line per request. */
  accessLog: boolean;
  limits?: LimitsConfig;
  /** Policies asked in order before a request is forwarded (see gate.ts). */
  gates?: readonly Gate[];
  /** Where each request is counted for the metrics (null: metrics off). */
  metrics?: RequestCounts | null;
}

/** What a config reload may change in the handlers; requests from then on use it. */
export type HandlerSettings = Pick<HandlerOptions, 'router' | 'trustProxy' | 'limits'>;

export interface Handlers {
  /** For the proxy's own listener (FrontServer). */
  front: FrontHandlers;
  /** For a host's http.Server ('request'). */
  request(req: IncomingMessage, res: ServerResponse): void;
  /** For a host's http.Server ('upgrade'). */
  upgrade(req: IncomingMessage, socket: Socket, head: Buffer): void;
  /** For an HTTP/2 stream on the TLS listener (h2/front.ts). */
  stream(req: H2Request): void;
  configure(settings: HandlerSettings): void;
  /** Writes out the access log lines gathered so far (serve's stop). */
  flush(): void;
}

/** What the header checks found, in one pass over the raw headers. */
interface Scan {
  hosts: number;
  host: string | undefined;
  te: number;
  teValue: string | undefined;
  contentLength: string | undefined;
  upgrade: string | undefined;
  requestId: string | undefined;
}

function scan(raw: string[]): Scan {
  const s: Scan = { hosts: 0, host: undefined, te: 0, teValue: undefined, contentLength: undefined, upgrade: undefined, requestId: undefined };
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    switch (name.length) {
      case 4:
        if (name.toLowerCase() === 'host') {
          s.hosts++;
          s.host ??= raw[i + 1];
        }
        break;
      case 7:
        if (name.toLowerCase() === 'upgrade') s.upgrade ??= raw[i + 1];
        break;
      case 12:
        if (name.toLowerCase() === 'x-request-id') s.requestId ??= raw[i + 1];
        break;
      case 14:
        if (name.toLowerCase() === 'content-length') s.contentLength ??= raw[i + 1];
        break;
      case 17:
        if (name.toLowerCase() === 'transfer-encoding') {
          s.te++;
          s.teValue ??= raw[i + 1];
        }
        break;
    }
  }
  return s;
}

/**
 * Why the body framing is refused, or null. llhttp takes a Transfer-Encoding list whose
 * last coding is chunked ("gzip, chunked", or split over two headers) and TE on HTTP/1.0;
 * we forward only one plain "chunked", so anything else would reach the app with a meaning
 * it may read differently (RFC 9112 §6.1). CL+TE and bad CL are refused by the parser.
 */
function framingError(head: RequestHead, s: Scan): string | null {
  if (s.te === 0) return null;
  if (head.versionMajor !== 1 || head.versionMinor !== 1) return 'Transfer-Encoding needs HTTP/1.1';
  if (s.te !== 1 || s.teValue!.trim().toLowerCase() !== 'chunked') return 'unsupported Transfer-Encoding';
  return null;
}

interface Admitted {
  host: string;
  route: Role;
  /** The request target in origin form. */
  url: string;
  /** The Host to send when the target was in absolute form. */
  hostOverride: string | undefined;
  /** No Host at all (HTTP/1.0). */
  noHost: boolean;
  body: BodyKind;
  upgrade: string | undefined;
  /** X-Request-Id: a trusted proxy's when well formed, else a new one (request-id.ts). */
  id: string;
}

interface Refusal {
  status: number;
  reason: string;
  headers?: ReadonlyArray<readonly [string, string]>;
}

/** What a 405 to TRACE says the app may be asked (RFC 9110 §15.5.6 wants an Allow). */
const ALLOW: ReadonlyArray<readonly [string, string]> = [['Allow', 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS']];

function trustedSet(addresses: readonly string[]): Set<string> {
  return new Set(addresses.flatMap((a) => [a, `::ffff:${a}`]));
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
    setRequestHeaders: [...(a.setRequestHeaders ?? []), ...(b.setRequestHeaders ?? [])],
    addResponseHeaders: [...(a.addResponseHeaders ?? []), ...(b.addResponseHeaders ?? [])],
  };
}

/** What a gate sees of a request: one small object, header lookups on demand. */
class View implements RequestView {
  readonly method: string;
  readonly path: string;
  readonly host: string;
  readonly role: Role;
  readonly trustedPeer: boolean;
  readonly upgrade: boolean;
  readonly #raw: string[];
  readonly #socket: Socket;

  constructor(head: RequestHead, a: Admitted, socket: Socket, trusted: boolean) {
    this.method = head.method;
    this.path = a.url;
    this.host = a.host;
    this.role = a.route;
    this.trustedPeer = trusted;
    this.upgrade = head.upgrade;
    this.#raw = head.raw;
    this.#socket = socket;
  }

  get remoteAddress(): string {
    return this.#socket.remoteAddress ?? '';
  }

  get tls(): { servername: string | null } | null {
    const s = this.#socket as Socket & { encrypted?: boolean; servername?: string | false };
    return s.encrypted ? { servername: s.servername || null } : null;
  }

  header(name: string): string | undefined {
    return headerValue(this.#raw, name);
  }

}

function answerHead(status: number, headers: ReadonlyArray<readonly [string, string]>, bodyLength: number): string {
  let head = statusLine(status);
  for (const [n, v] of headers) head += `${n}: ${v}\r\n`;
  return `${head}Content-Length: ${bodyLength}\r\nConnection: close\r\n\r\n`;
}

const EMPTY = Buffer.alloc(0);

export function createHandlers(opts: HandlerOptions): Handlers {
  if (engineProblem !== null) throw new BgError('BG_STATE', engineProblem);
  const { table } = opts;
  const settings = opts.exchange;
  let router = opts.router;
  let { maxHeaders, maxUrlBytes: maxUrl, maxBodyBytes } = opts.limits ?? DEFAULT_LIMITS;
  let trusted = trustedSet(opts.trustProxy);
  const gates = opts.gates ?? [];
  const log = opts.accessLog ? new AccessLog(opts.logger) : null;
  const accessLog = log?.enabled ? log : null;
  const metrics = opts.metrics ?? null;

  function configure(s: HandlerSettings): void {
    router = s.router;
    ({ maxHeaders, maxUrlBytes: maxUrl, maxBodyBytes } = s.limits ?? DEFAULT_LIMITS);
    trusted = trustedSet(s.trustProxy);
  }

  /** The checks every request and upgrade passes, in one place: limits, framing, Host, route; its id. */
  function admit(head: RequestHead, isTrusted: boolean): Admitted | Refusal {
    if (head.raw.length > 2 * maxHeaders) return { status: 431, reason: 'too many header fields' };
    let url = head.url;
    if (url.length > maxUrl) return { status: 414, reason: 'request target too long' };
    const s = scan(head.raw);
    const framing = framingError(head, s);
    if (framing !== null) return { status: 400, reason: framing };
    if (s.hosts > 1) return { status: 400, reason: 'bad or missing Host header' };
    let hostValue = s.host;
    let hostOverride: string | undefined;
    if (url.charCodeAt(0) !== 47 /* / */) {
      // Absolute form (GET http://h/p): its host wins over the Host header (RFC 9112 §3.2.2).
      if (url === '*' && head.method === 'OPTIONS') {
        // asterisk form: routed by Host
      } else {
        if (!/^https?:\/\//i.test(url)) return { status: 400, reason: 'bad request target' };
        let parsed: URL;
        try {
          parsed = new URL(url);
        } catch {
          return { status: 400, reason: 'bad request target' };
        }
        if (parsed.username || parsed.password) return { status: 400, reason: 'bad request target' };
        url = `${parsed.pathname}${parsed.search}`;
        hostValue = parsed.host;
        hostOverride = parsed.host;
      }
    }
    let host: string | null;
    // HTTP/1.0 may omit Host: route it as an unknown host.
    if (hostValue === undefined && head.versionMajor === 1 && head.versionMinor === 0) host = '';
    else host = normalizeHost(hostValue);
    if (host === null) return { status: 400, reason: 'bad or missing Host header' };
    const route = router.route(host);
    if (route === 'reject') return { status: 421, reason: 'unknown host' };
    // TRACE echoes the request back (cookies, credentials our gates added): refused like nginx.
    if (head.method === 'TRACE') return { status: 405, reason: 'TRACE is not allowed', headers: ALLOW };
    const body: BodyKind = s.te > 0 ? 'chunked' : s.contentLength !== undefined && s.contentLength !== '0' ? 'length' : 'none';
    // A declared body over the limit is refused before anything reaches the app (nginx's client_max_body_size).
    if (body === 'length' && !head.upgrade && tooLarge(head.raw, maxBodyBytes)) return { status: 413, reason: 'request body too large' };
    const id = requestIds.of(s.requestId, isTrusted);
    return { host, route, url, hostOverride, noHost: hostValue === undefined, body, upgrade: s.upgrade, id };
  }

  function prepare(
    head: RequestHead,
    a: Admitted,
    target: Target,
    socket: Socket,
    isTrusted: boolean,
    fwd: Forward | null,
    upgrade: boolean,
    upgradeBody?: Buffer,
  ): string {
    const enc = (socket as Socket & { encrypted?: boolean }).encrypted === true;
    // An upgrade request's body was read whole: it goes with its exact length, never chunked.
    let set = fwd?.setRequestHeaders;
    if (upgradeBody !== undefined) set = [...(set ?? []), ['Content-Length', String(upgradeBody.length)]];
    return upstreamHead(head.method, a.url, head.raw, {
      fwd: { remoteAddress: socket.remoteAddress ?? '', trusted: isTrusted, proto: enc ? 'https' : 'http' },
      // A buffered chunked body reaches the app de-chunked; the exchange adds its Content-Length.
      body: upgrade ? 'none' : a.body === 'chunked' && settings.buffering?.requests === true ? 'length' : a.body,
      ...(upgrade && a.upgrade !== undefined ? { upgrade: a.upgrade } : {}),
      ...(a.hostOverride !== undefined ? { host: a.hostOverride } : {}),
      ...(a.noHost ? { fallbackHost: `127.0.0.1:${target.port}` } : {}),
      ...(fwd?.stripRequestHeaders ? { strip: fwd.stripRequestHeaders } : {}),
      ...(set ? { set } : {}),
      requestId: a.id,
    });
  }

  /** The gates' verdict on a request (null: forward it as it is). */
  function check(head: RequestHead, a: Admitted, socket: Socket, isTrusted: boolean): Verdict | null {
    return gates.length === 0 ? null : runGates(gates, new View(head, a, socket, isTrusted));
  }

  /** After a gate's wait: `go` with what it decided, unless the client has gone meanwhile. */
  function afterWait(w: Wait, go: (v: Verdict | null) => void, gone: () => boolean): void {
    w.until.then(
      (after) => {
        if (!gone()) go(after);
      },
      () => {
        if (!gone()) go({ kind: 'answer', status: 503, body: 'bgproxy: unavailable\n', close: true });
      },
    );
  }

  /** The exchange for a request the gates let through (possibly changed: another color, headers). */
  function exchange(head: RequestHead, a: Admitted, socket: Socket, isTrusted: boolean, v: Verdict | null, sink: Sink, source: Source, owner: ExchangeOwner): Exchange {
    const fwd = v !== null && v.kind === 'forward' ? v : null;
    const target = fwd?.color !== undefined ? table.targetOf(fwd.color) : table.targetFor(a.route);
    const ex = new Exchange(settings, target, a.route, head.method, prepare(head, a, target, socket, isTrusted, fwd, false), a.body, sink, source, owner);
    if (fwd?.addResponseHeaders) ex.addHeaders = fwd.addResponseHeaders.flat();
    ex.id = a.id;
    return ex;
  }

  // --- the proxy's own connections ----------------------------------------------------------

  const front: FrontHandlers = {
    request(conn: FrontConn, req: FrontRequest): void {
      const isTrusted = trusted.has(conn.socket.remoteAddress ?? '');
      const a = admit(req, isTrusted);
      // 421 and 405 leave the request well framed; other refusals close, so an unread body is never read as a request.
      if ('status' in a) return conn.answer(req, a.status, a.headers ?? [], `bgproxy: ${a.reason}\n`, a.status !== 421 && a.status !== 405);
      req.host = a.host;
      req.url = a.url;
      req.route = a.route;
      const v = check(req, a, conn.socket, isTrusted);
      if (v === null || v.kind !== 'wait') return forwardFront(conn, req, a, isTrusted, v);
      conn.hold();
      afterWait(
        v,
        (after) => forwardFront(conn, req, a, isTrusted, after),
        () => conn.socket.destroyed,
      );
    },
    refuseUpgrade(_conn: FrontConn, req: FrontRequest): Refused | null {
      // Only whether it is refused matters here (upgrade() admits it again, trusted or not).
      const a = admit(req, false);
      if ('status' in a) return { status: a.status, headers: a.headers, body: `bgproxy: ${a.reason}\n` };
      if (req.method === 'CONNECT' || a.upgrade === undefined) return { status: 400, body: 'bgproxy: bad upgrade request\n' };
      return null;
    },
    upgrade(conn: FrontConn, req: FrontRequest, rest: Buffer): void {
      const pending = req.pending;
      req.pending = null;
      const body = pending === null ? undefined : pending.length === 1 ? pending[0]! : Buffer.concat(pending);
      upgradeSocket(req, conn.socket, rest, body ?? EMPTY);
    },
    done(_conn: FrontConn, req: FrontRequest, status: number): void {
      const ex = req.exchange;
      if (accessLog === null && metrics === null) return;
      const ms = performance.now() - req.started;
      if (ex !== null) accessLog?.write(req.method, req.host, req.url, status, ex.target.color, ms, false, ex.id);
      metrics?.request(req.route, ex === null ? null : ex.target.color, status, ms / 1000);
    },
  };

  function forwardFront(conn: FrontConn, req: FrontRequest, a: Admitted, isTrusted: boolean, v: Verdict | null): void {
    if (v !== null && v.kind === 'answer') return conn.answer(req, v.status, withId(v.headers, a.id), v.body, v.close === true);
    conn.forward(req, exchange(req, a, conn.socket, isTrusted, v, conn, conn, conn));
  }

  /**
   * An upgrade request, its socket now ours. `body` is its body as the front read it, or
   * null when a host's http.Server handed it over (Node reads no body of an upgrade request:
   * one that declares a body is refused there, as its bytes would be taken for the new protocol).
   */
  function upgradeSocket(head: RequestHead, socket: Socket, rest: Buffer, body: Buffer | null): void {
    socket.on('error', () => socket.destroy());
    const isTrusted = trusted.has(socket.remoteAddress ?? '');
    const a = admit(head, isTrusted);
    if ('status' in a) {
      metrics?.upgrade(null, null, a.status);
      socket.write(headBytes(answerHead(a.status, a.headers ?? [], 0)));
      lingerEnd(socket);
      return;
    }
    if (head.method === 'CONNECT' || a.upgrade === undefined || (body === null && a.body !== 'none')) {
      metrics?.upgrade(a.route, null, 400);
      socket.write(answerHead(400, [], 0));
      lingerEnd(socket);
      return;
    }
    const go = (v: Verdict | null): void => {
        if (v !== null && v.kind === 'answer') {
          const page = typeof v.body === 'string' ? Buffer.from(v.body) : v.body;
          metrics?.upgrade(a.route, null, v.status);
          socket.write(Buffer.concat([headBytes(answerHead(v.status, withId(v.headers, a.id), page.length)), page]));
          lingerEnd(socket);
          return;
        }
        const fwd = v !== null && v.kind === 'forward' ? v : null;
        const target = fwd?.color !== undefined ? table.targetOf(fwd.color) : table.targetFor(a.route);
        target.trackSocket(socket);
        accessLog?.write(head.method, a.host, a.url, 101, target.color, 0, true, a.id);
        metrics?.upgrade(a.route, target.color, 101);
        tunnel(socket, {
          port: target.port,
          head: prepare(head, a, target, socket, isTrusted, fwd, true, body !== null && a.body !== 'none' ? body : undefined),
          body: body ?? undefined,
          rest,
          method: head.method,
          http10: head.versionMinor === 0,
          upstreamTimeoutMs: settings.upstreamTimeoutMs,
          logger: settings.logger,
          color: target.color,
          addHeaders: [...(fwd?.addResponseHeaders?.flat() ?? []), 'X-Request-Id', a.id],
        });
    };
    const v = check(head, a, socket, isTrusted);
    if (v === null || v.kind !== 'wait') return go(v);
    socket.pause();
    afterWait(v, go, () => socket.destroyed);
  }

  // --- HTTP/2 streams ----------------------------------------------------------------------

  function stream(r: H2Request): void {
    const isTrusted = trusted.has(r.socket.remoteAddress ?? '');
    const a = admit(r.request, isTrusted);
    if ('status' in a) {
      metrics?.request(null, null, a.status, (performance.now() - r.started) / 1000);
      return r.answer(a.status, a.headers ?? [], `bgproxy: ${a.reason}\n`);
    }
    r.host = a.host;
    r.url = a.url;
    r.route = a.route;
    const go = (v: Verdict | null): void => {
      if (v !== null && v.kind === 'answer') {
        metrics?.request(a.route, null, v.status, (performance.now() - r.started) / 1000);
        return r.answer(v.status, withId(v.headers, a.id), v.body);
      }
      r.forward(exchange(r.request, a, r.socket, isTrusted, v, r, r, r), accessLog, metrics);
    };
    const v = check(r.request, a, r.socket, isTrusted);
    if (v === null || v.kind !== 'wait') return go(v);
    afterWait(v, go, () => r.gone);
  }

  // --- a host's http.Server (embedding) -----------------------------------------------------

  function request(req: IncomingMessage, res: ServerResponse): void {
    const head = headOf(req, false);
    const started = performance.now();
    const socket = req.socket;
    const isTrusted = trusted.has(socket.remoteAddress ?? '');
    const a = admit(head, isTrusted);
    if ('status' in a) {
      metrics?.request(null, null, a.status, (performance.now() - started) / 1000);
      return plain(res, a.status, a.headers ?? [], `bgproxy: ${a.reason}\n`, a.status !== 421 && a.status !== 405);
    }
    const go = (v: Verdict | null): void => {
        if (v !== null && v.kind === 'answer') {
          metrics?.request(a.route, null, v.status, (performance.now() - started) / 1000);
          return plain(res, v.status, withId(v.headers, a.id), v.body, v.close === true);
        }
        const sink = new ResponseSink(res);
        const source: Source = { pauseBody: () => req.pause(), resumeBody: () => req.resume() };
        const owner = {
          exchangeDone: (ex: Exchange): void => {
            const ms = performance.now() - started;
            accessLog?.write(head.method, a.host, a.url, ex.status, ex.target.color, ms, false, a.id);
            metrics?.request(a.route, ex.target.color, ex.status, ms / 1000);
          },
        };
        const ex = exchange(head, a, socket, isTrusted, v, sink, source, owner);
        sink.exchange = ex;
        res.on('close', () => {
          if (!res.writableFinished) ex.abort();
        });
        ex.start();
        if (a.body !== 'none') {
          req.on('data', (c: Buffer) => ex.onBody(c));
          req.on('end', () => ex.onBodyEnd());
        }
        req.resume();
    };
    const v = check(head, a, socket, isTrusted);
    if (v === null || v.kind !== 'wait') return go(v);
    req.pause();
    afterWait(v, go, () => res.destroyed);
  }

  function upgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    upgradeSocket(headOf(req, true), socket, head, null);
  }

  return { front, request, upgrade, stream, configure, flush: () => accessLog?.close() };
}

/** A gate's answer headers with the request's X-Request-Id (answers are the slow path). */
function withId(headers: Answer['headers'], id: string): ReadonlyArray<readonly [string, string]> {
  return [...(headers ?? []), ['X-Request-Id', id]];
}

/** A host's parsed request as the engine's request head. */
function headOf(req: IncomingMessage, upgrade: boolean): RequestHead {
  return {
    method: req.method ?? 'GET',
    url: req.url ?? '/',
    versionMajor: req.httpVersionMajor,
    versionMinor: req.httpVersionMinor,
    raw: req.rawHeaders,
    upgrade,
    keepAlive: !upgrade,
  };
}

function plain(res: ServerResponse, status: number, headers: Answer['headers'], body: string | Buffer, close: boolean): void {
  const h: string[] = ['Cache-Control', 'no-store'];
  let typed = false;
  for (const [n, v] of headers ?? []) {
    if (n.toLowerCase() === 'content-type') typed = true;
    h.push(n, v);
  }
  if (!typed) h.push('Content-Type', 'text/plain; charset=utf-8');
  h.push('Content-Length', String(typeof body === 'string' ? Buffer.byteLength(body) : body.length));
  // A refused request may have an unread or untrusted body: never read past it.
  if (close) h.push('Connection', 'close');
  res.writeHead(status, h);
  res.end(res.req?.method === 'HEAD' ? undefined : body);
}

/** A Node ServerResponse as an exchange's sink: Node frames the body itself. */
class ResponseSink implements Sink {
  exchange: Exchange | null = null;
  readonly #res: ServerResponse;
  #drainHooked = false;

  constructor(res: ServerResponse) {
    this.#res = res;
  }

  get headSent(): boolean {
    return this.#res.headersSent;
  }

  head(status: number, message: string, headers: string[], _framing: Framing, close?: boolean): void {
    if (close === true) headers.push('Connection', 'close');
    this.#res.writeHead(status, message, headers);
  }

  body(chunk: Buffer): boolean {
    const ok = this.#res.write(chunk);
    if (!ok && !this.#drainHooked) {
      this.#drainHooked = true;
      this.#res.on('drain', () => this.exchange?.onSinkDrain());
    }
    return ok;
  }

  end(): void {
    this.#res.end();
  }

  abort(): void {
    this.#res.destroy();
  }
}

/** Creates the proxy's listener on the new engine with the given handlers. */
export function createFrontServer(handlers: Handlers, timeouts: TimeoutsConfig, limits: LimitsConfig = DEFAULT_LIMITS): FrontServer {
  return new FrontServer(handlers.front, timeouts, limits);
}
