// Forwarding to a color's port with http-proxy, and everything http-proxy 1.18.1 gets wrong
// handled around it: its DELETE/OPTIONS Content-Length rewrite (request smuggling), its
// url.parse on every request, errors that escape its 'error' event, client aborts that do
// not reach the upstream, timeouts reported as 502, truncated responses ended cleanly.
import type { ClientRequest, IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { PassThrough, type Readable } from 'node:stream';
import type HttpProxy from 'http-proxy';
import httpProxy from './http-proxy-loader.js';
import type { Logger } from '../log.js';
import { responseHeaders } from './headers.js';
import type { Target } from './target.js';

export type ProxyFailure = 'refused' | 'timeout' | 'bad-response';

/** The one place where an upstream failure becomes a status code. */
export function statusFor(kind: ProxyFailure): number {
  return kind === 'timeout' ? 504 : 502;
}

function failureBody(kind: ProxyFailure, target: Target, timeoutMs: number): string {
  switch (kind) {
    case 'refused':
      return `bgproxy: the ${target.color} app is not accepting connections\n`;
    case 'timeout':
      return `bgproxy: the ${target.color} app did not answer within ${timeoutMs} ms\n`;
    default:
      return `bgproxy: bad response from the ${target.color} app\n`;
  }
}

export interface ForwarderOptions {
  upstreamTimeoutMs: number;
  /** How long a request waits for a color that refuses connections (restarting) before 502. */
  holdMs: number;
  /** Largest request body kept for a retry; a larger one gets 502 instead of a truncated replay. */
  retryBodyMax: number;
  logger: Logger;
}

interface Ctx {
  target: Target;
  started: number;
  attempts: number;
  proxyReq: ClientRequest | null;
  timedOut: boolean;
  gotResponse: boolean;
  /** Request body seen so far, for a replay; null when the request has no body. */
  chunks: Buffer[] | null;
  bytes: number;
  overflow: boolean;
  /** Already sent again after the app reset the connection under it. */
  resent: boolean;
}

const CTX = Symbol('bgproxy.ctx');
/** How long a websocket the client half-closed may wait for the app to close its side. */
const WS_HALF_OPEN_MS = 2000;
/** Set on a client socket whose upgrade request timed out upstream (504, not 502). */
const WS_TIMED_OUT = Symbol('bgproxy.wsTimedOut');
type Req = IncomingMessage & { [CTX]?: Ctx };

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

interface PatchedProxy extends HttpProxy {
  webPasses: Array<{ name: string }>;
  wsPasses: Array<{ name: string }>;
}

export class Forwarder {
  readonly #proxy: PatchedProxy;
  #opts: ForwarderOptions;

  constructor(opts: ForwarderOptions) {
    this.#opts = opts;
    // toProxy: use req.url as is (no url.parse, DEP0169); selfHandleResponse: we write the
    // response ourselves so hop-by-hop headers and truncation are handled here.
    const proxy = httpProxy.createProxyServer({
      toProxy: true,
      prependPath: false,
      selfHandleResponse: true,
      xfwd: false,
    }) as PatchedProxy;
    // Only the 'stream' pass: 'deleteLength' smuggles a chunked body behind Content-Length: 0
    // (CVE-2026-29057), 'timeout' touches the client socket, 'XHeaders' trusts client values.
    proxy.webPasses = proxy.webPasses.filter((p) => p.name === 'stream');
    proxy.wsPasses = proxy.wsPasses.filter((p) => p.name !== 'XHeaders');
    // Every call passes its own callback; this listener only keeps a stray error from throwing.
    proxy.on('error', (err) => opts.logger.debug({ err: err.message }, 'proxy error outside a request'));
    proxy.on('proxyReq', (proxyReq: ClientRequest, req: Req) => this.#onProxyReq(proxyReq, req));
    proxy.on('proxyRes', (proxyRes: IncomingMessage, req: Req, res: ServerResponse) => this.#onProxyRes(proxyRes, req, res));
    // An upstream that accepts an upgrade and never answers would hold the client forever;
    // the timeout covers the answer only, never the websocket's idle time afterwards.
    proxy.on('proxyReqWs', (proxyReq: ClientRequest, _req: IncomingMessage, socket: Socket) => {
      proxyReq.setTimeout(this.#opts.upstreamTimeoutMs, () => {
        (socket as Socket & { [WS_TIMED_OUT]?: boolean })[WS_TIMED_OUT] = true;
        proxyReq.destroy();
      });
      const clear = (): void => {
        proxyReq.setTimeout(0);
      };
      proxyReq.once('upgrade', (_res: IncomingMessage, proxySocket: Socket) => {
        clear();
        // http-proxy pipes the two sockets but only ends one when the other *ends*: a side
        // that is destroyed or vanishes would leave its partner open. Close them together.
        socket.once('close', () => proxySocket.destroy());
        proxySocket.once('close', () => socket.destroy());
      });
      proxyReq.once('response', clear);
    });
    this.#proxy = proxy;
  }

  /** A config reload: new upstream timeout and hold time for requests from now on. */
  update(opts: Pick<ForwarderOptions, 'upstreamTimeoutMs' | 'holdMs'>): void {
    this.#opts = { ...this.#opts, ...opts };
  }

  web(req: IncomingMessage, res: ServerResponse, target: Target): void {
    const r = req as Req;
    const hasBody = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
    const ctx: Ctx = {
      target,
      started: performance.now(),
      attempts: 0,
      proxyReq: null,
      timedOut: false,
      gotResponse: false,
      chunks: hasBody ? [] : null,
      bytes: 0,
      overflow: false,
      resent: false,
    };
    r[CTX] = ctx;
    if (hasBody && this.#opts.holdMs > 0) {
      const max = this.#opts.retryBodyMax;
      req.on('data', (chunk: Buffer) => {
        ctx.bytes += chunk.length;
        if (ctx.bytes > max) {
          ctx.overflow = true;
          ctx.chunks = null;
        } else ctx.chunks?.push(chunk);
      });
    } else if (hasBody) ctx.overflow = true;
    // A client that goes away takes its upstream request with it ('aborted' alone is not
    // reliable on current Node).
    res.once('close', () => {
      if (!res.writableFinished) ctx.proxyReq?.destroy();
    });
    this.#attempt(r, res, ctx, undefined);
  }

  #attempt(req: Req, res: ServerResponse, ctx: Ctx, buffer: Readable | undefined): void {
    ctx.attempts++;
    ctx.proxyReq = null;
    ctx.timedOut = false;
    const t = ctx.target;
    this.#proxy.web(
      req,
      res,
      { target: { host: '127.0.0.1', port: t.port }, agent: t.agent, ...(buffer ? { buffer } : {}) },
      (err: NodeJS.ErrnoException) => this.#onError(err, req, res, ctx),
    );
  }

  #onProxyReq(proxyReq: ClientRequest, req: Req): void {
    const ctx = req[CTX];
    if (!ctx) return;
    ctx.proxyReq = proxyReq;
    proxyReq.setTimeout(this.#opts.upstreamTimeoutMs, () => {
      ctx.timedOut = true;
      proxyReq.destroy();
    });
  }

  #onProxyRes(proxyRes: IncomingMessage, req: Req, res: ServerResponse): void {
    const ctx = req[CTX];
    if (ctx) ctx.gotResponse = true;
    if (res.destroyed) {
      proxyRes.destroy();
      return;
    }
    // An upstream that stops mid-body must look cut off to the client too, never complete.
    proxyRes.once('error', () => res.destroy());
    proxyRes.once('close', () => {
      if (!proxyRes.complete) res.destroy();
    });
    try {
      res.writeHead(
        proxyRes.statusCode ?? 502,
        proxyRes.statusMessage,
        responseHeaders(proxyRes.rawHeaders, proxyRes.headers.connection),
      );
    } catch {
      proxyRes.destroy();
      if (ctx) this.#fail(req, res, ctx, 'bad-response');
      return;
    }
    proxyRes.pipe(res);
  }

  #onError(err: NodeJS.ErrnoException, req: Req, res: ServerResponse, ctx: Ctx): void {
    if (res.writableEnded || res.destroyed) return;
    const code = err.code;
    const elapsed = performance.now() - ctx.started;
    if (!ctx.timedOut && code === 'ECONNREFUSED' && ctx.target.holdable && elapsed < this.#opts.holdMs && !ctx.overflow) {
      // Nothing reached the app: safe to retry any method once it listens again.
      const delay = Math.min(25 * 2 ** Math.min(ctx.attempts, 5), 500, this.#opts.holdMs - elapsed);
      // Each attempt adds http-proxy's listeners to req; a held request makes a few dozen.
      req.setMaxListeners(0);
      setTimeout(() => this.#retry(req, res, ctx), delay).unref();
      return;
    }
    const resetBeforeAnswer =
      !ctx.timedOut && !ctx.gotResponse && !ctx.overflow && (code === 'ECONNRESET' || code === 'EPIPE') && IDEMPOTENT.has(req.method ?? '');
    if (resetBeforeAnswer && ctx.attempts === 1 && ctx.proxyReq?.reusedSocket === true) {
      // The app closed an idle pooled socket as we wrote to it: retry once on a fresh one.
      this.#retry(req, res, ctx);
      return;
    }
    if (resetBeforeAnswer && !ctx.resent && ctx.target.holdable && elapsed < this.#opts.holdMs) {
      // The app died under an idempotent request (a crash, kill -9): like nginx's
      // proxy_next_upstream, send it again once the restarted app listens. Only once,
      // so a request that crashes the app cannot crash it again and again.
      ctx.resent = true;
      req.setMaxListeners(0);
      setTimeout(() => this.#retry(req, res, ctx), Math.min(100, this.#opts.holdMs - elapsed)).unref();
      return;
    }
    if (ctx.gotResponse || res.headersSent) {
      res.destroy();
      return;
    }
    const kind: ProxyFailure = ctx.timedOut ? 'timeout' : code === 'ECONNREFUSED' ? 'refused' : 'bad-response';
    this.#opts.logger.debug({ err: err.message, code, color: ctx.target.color, kind }, 'upstream error');
    this.#fail(req, res, ctx, kind);
  }

  #retry(req: Req, res: ServerResponse, ctx: Ctx): void {
    if (res.writableEnded || res.destroyed) return;
    if (ctx.chunks === null) {
      if (ctx.overflow) return this.#fail(req, res, ctx, 'refused');
      // No body: the request can be sent again as it is.
      this.#attempt(req, res, ctx, emptyBody());
      return;
    }
    if (!req.readableEnded) {
      // The body is still arriving: wait for it (or for the cap) before replaying.
      const onEnd = (): void => {
        req.off('end', onEnd);
        this.#retry(req, res, ctx);
      };
      req.on('end', onEnd);
      return;
    }
    if (ctx.overflow) return this.#fail(req, res, ctx, 'refused');
    const body = new PassThrough();
    for (const c of ctx.chunks) body.write(c);
    body.end();
    this.#attempt(req, res, ctx, body);
  }

  #fail(req: Req, res: ServerResponse, ctx: Ctx, kind: ProxyFailure): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const body = failureBody(kind, ctx.target, this.#opts.upstreamTimeoutMs);
    res.writeHead(statusFor(kind), {
      'content-type': 'text/plain; charset=utf-8',
      'content-length': Buffer.byteLength(body),
      'cache-control': 'no-store',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  /** Proxies a websocket (or other) upgrade. Errors end the client socket, never the process. */
  ws(req: IncomingMessage, socket: Socket, head: Buffer, target: Target): void {
    // A client that half-closes (FIN) is done; if the app never closes its side, the
    // connection would stay half-open and hold drains and shutdown until their timeouts.
    socket.once('end', () => setTimeout(() => socket.destroy(), WS_HALF_OPEN_MS).unref());
    this.#proxy.ws(req, socket, head, { target: { host: '127.0.0.1', port: target.port } }, (err: Error) => {
      this.#opts.logger.debug({ err: err.message, color: target.color }, 'websocket upstream error');
      if (socket.destroyed) return;
      // Nothing written yet means the upgrade never happened: answer instead of hanging up.
      if (socket.bytesWritten === 0 && socket.writable) {
        const status = (socket as Socket & { [WS_TIMED_OUT]?: boolean })[WS_TIMED_OUT] ? '504 Gateway Timeout' : '502 Bad Gateway';
        socket.end(`HTTP/1.1 ${status}\r\nContent-Type: text/plain\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
      } else socket.destroy();
    });
  }

  close(): void {
    this.#proxy.close();
  }
}

function emptyBody(): Readable {
  const p = new PassThrough();
  p.end();
  return p;
}
