// One request forwarded to a color's app and its answer relayed back: which upstream socket
// it uses, what is retried (and what never is), and what a failure becomes (502, 504, or a
// cut-off client). The client side is a Sink (the proxy's own wire connection, or a Node
// ServerResponse when a host embeds bgproxy) and a Source for the request body.

import type { Role } from '../config.js';
import type { Logger } from '../log.js';
import { RequestBody } from './buffer/request-body.js';
import { ResponseSpool, type SpoolOwner } from './buffer/response-spool.js';
import type { TempStore } from './buffer/temp-files.js';
import { headBytes, responseHeaders, unrelayable } from './headers.js';
import { reasonPhrase, relayedPhrase } from './status.js';
import type { Target } from './target.js';
import type { Clock, UpstreamConn, UpstreamUser } from './upstream.js';

export type ProxyFailure = 'refused' | 'timeout' | 'bad-response' | 'too-large' | 'disk-full';

/**
 * Why an exchange failed on the app's side, as the metrics count it (index into
 * Target.upstreamErrors): refused (nothing listens), timeout (upstreamTimeoutMs), reset (the
 * connection broke), protocol (the app sent something that is not a valid answer).
 */
export const UPSTREAM_ERROR_KINDS = ['refused', 'timeout', 'reset', 'protocol'] as const;
const REFUSED = 0;
const TIMEOUT = 1;
const RESET = 2;
const PROTOCOL = 3;

/** The one place where an upstream failure becomes a status code. */
export function statusFor(kind: ProxyFailure): number {
  return kind === 'timeout' ? 504 : kind === 'too-large' ? 413 : kind === 'disk-full' ? 503 : 502;
}

export function failureBody(kind: ProxyFailure, color: string, timeoutMs: number): string {
  switch (kind) {
    case 'refused':
      return `bgproxy: the ${color} app is not accepting connections\n`;
    case 'timeout':
      return `bgproxy: the ${color} app did not answer within ${timeoutMs} ms\n`;
    case 'too-large':
      return 'bgproxy: request body too large\n';
    case 'disk-full':
      return 'bgproxy: no room to buffer the request body now, retry later\n';
    default:
      return `bgproxy: bad response from the ${color} app\n`;
  }
}

/**
 * How a response body is delimited upstream: none (HEAD, 204, 304), by Content-Length,
 * chunked, or by the app closing the connection.
 */
export type Framing = 'none' | 'length' | 'chunked' | 'close';

/** Where a response goes. */
export interface Sink {
  /** Writes the status line and headers (hop-by-hop ones already removed); `close`: the connection ends after it. */
  head(status: number, message: string, headers: string[], framing: Framing, close?: boolean): void;
  /** Writes body bytes; false asks the exchange to stop reading until onSinkDrain. */
  body(chunk: Buffer): boolean;
  end(): void;
  /** Cuts the client off: the response must look truncated, never complete. */
  abort(): void;
  readonly headSent: boolean;
}

/** Where the request body comes from. */
export interface Source {
  pauseBody(): void;
  resumeBody(): void;
}

export interface ExchangeSettings {
  upstreamTimeoutMs: number;
  /** How long a request waits for a color that refuses connections (restarting) before 502. */
  holdMs: number;
  /** Largest request body kept for a retry; a larger one gets 502 instead of a truncated replay. */
  retryBodyMax: number;
  /** Largest request body (0: no limit); a larger one gets 413. */
  maxBodyBytes: number;
  /** Request and response buffering; null: none (both stream). */
  buffering: BufferSettings | null;
  logger: Logger;
  clock: Clock;
}

/** How exchanges buffer (see src/proxy/buffer/). */
export interface BufferSettings {
  requests: boolean;
  responses: boolean;
  /** Bytes held in memory per request body and per response before a temp file takes the rest. */
  memoryBytes: number;
  store: TempStore;
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);
const CRLF = Buffer.from('\r\n');
const LAST_CHUNK = '0\r\n\r\n';

export type BodyKind = 'none' | 'length' | 'chunked';

/** Told once when the exchange is over: answered, failed, or abandoned. */
export interface ExchangeOwner {
  exchangeDone(ex: Exchange): void;
}

export class Exchange implements UpstreamUser, SpoolOwner {
  readonly #s: ExchangeSettings;
  readonly target: Target;
  readonly role: Role;
  readonly method: string;
  #head: string;
  readonly #bodyKind: BodyKind;
  readonly #sink: Sink;
  readonly #source: Source;
  readonly #owner: ExchangeOwner;
  readonly started: number;
  #conn: UpstreamConn | null = null;
  #attempts = 0;
  #timedOut = false;
  #gotResponse = false;
  #resent = false;
  /** Request body kept for a replay; null when there is none or it outgrew retryBodyMax. */
  #chunks: Buffer[] | null;
  #bytes = 0;
  #overflow = false;
  #bodyDone: boolean;
  #bodySent = false;
  #retryOnBodyEnd = false;
  #info = false;
  #framing: Framing = 'none';
  /** The whole request body, read before the app is contacted (buffered requests); null: streamed. */
  readonly #reqBody: RequestBody | null = null;
  /** A chunked request body sent de-chunked with its Content-Length (the head has neither yet). */
  #chunkedToLength = false;
  /** The response may be absorbed from the app (buffering on; not SSE, not X-Accel-Buffering: no). */
  #spoolable = false;
  /** Holds what the client could not take yet; created when it first falls behind. */
  #spool: ResponseSpool | null = null;
  /** The app finished its response (its socket is released) while the spool still delivers it. */
  #upstreamDone = false;
  /** Response status, 0 until a response is complete (or when it was cut off). */
  status = 0;
  finished = false;
  /** Upstream reading paused until the client drains: not idle, so not timed out. */
  waitingForClient = false;
  /** Response headers a gate adds ([name, value, …]), or null. */
  addHeaders: string[] | null = null;
  /** The request's X-Request-Id, returned to the client with the answer (see request-id.ts). */
  id: string | undefined = undefined;

  constructor(
    s: ExchangeSettings,
    target: Target,
    role: Role,
    method: string,
    upstreamHead: string,
    bodyKind: BodyKind,
    sink: Sink,
    source: Source,
    owner: ExchangeOwner,
  ) {
    this.#s = s;
    this.target = target;
    this.role = role;
    this.method = method;
    this.#head = upstreamHead;
    this.#bodyKind = bodyKind;
    this.#sink = sink;
    this.#source = source;
    this.#owner = owner;
    this.started = performance.now();
    this.#bodyDone = bodyKind === 'none';
    // A body is kept for a replay only when a replay can happen (holdMs > 0).
    this.#chunks = bodyKind !== 'none' && s.holdMs > 0 ? [] : null;
    if (bodyKind !== 'none' && s.holdMs <= 0) this.#overflow = true;
    const b = s.buffering;
    if (bodyKind !== 'none' && b !== null && b.requests) {
      // Read whole first, so replayable at any size (the proxy built a head without framing).
      const rb = new RequestBody(b.store, b.memoryBytes);
      rb.onWritable = () => this.#source.resumeBody();
      rb.onError = (err) => this.#bufferFailed(err);
      this.#reqBody = rb;
      this.#chunks = null;
      this.#overflow = false;
      this.#chunkedToLength = bodyKind === 'chunked';
    }
    target.begin(role);
  }

  start(): void {
    // A buffered body is sent once whole (onBodyEnd); nothing reaches the app before.
    if (this.#reqBody === null) this.#attempt();
  }

  /** The response is being held for a slow client (front: a drain is for the exchange). */
  get spooling(): boolean {
    return this.#spool?.active === true;
  }

  #attempt(): void {
    this.#attempts++;
    this.#timedOut = false;
    const conn = this.target.pool.acquire();
    this.#conn = conn;
    conn.user = this;
    conn.seen = performance.now();
    const rb = this.#reqBody;
    if (rb !== null) {
      conn.write(headBytes(this.#head));
      rb.send(this);
      return;
    }
    if (this.#bodyKind === 'none') {
      conn.write(headBytes(this.#head));
      return;
    }
    const sock = conn.socket;
    sock.cork();
    conn.write(headBytes(this.#head));
    if (this.#chunks !== null) for (const c of this.#chunks) this.#writeBody(conn, c);
    if (this.#bodyDone) this.#endBody(conn);
    sock.uncork();
  }

  #writeBody(conn: UpstreamConn, chunk: Buffer): boolean {
    if (this.#bodyKind === 'chunked') {
      conn.write(`${chunk.length.toString(16)}\r\n`);
      conn.write(chunk);
      return conn.write(CRLF);
    }
    return conn.write(chunk);
  }

  #endBody(conn: UpstreamConn): void {
    if (this.#bodyKind === 'chunked') conn.write(LAST_CHUNK);
    this.#bodySent = true;
  }

  // --- BodyWriter: a buffered request body on its way to the app -------------------------

  write(chunk: Buffer): boolean {
    const conn = this.#conn;
    return conn?.write(chunk) === true;
  }

  done(): void {
    this.#bodySent = true;
  }

  failed(err: Error): void {
    this.#bufferFailed(err);
  }

  /** A temp file failed (disk error): the request fails as the app's would, nothing half-sent. */
  #bufferFailed(err: Error): void {
    if (this.finished) return;
    this.#s.logger.warn({ err: err.message, color: this.target.color }, 'buffering failed');
    this.#dropConn();
    if (this.#sink.headSent) {
      this.#sink.abort();
      this.#finish(0);
    } else this.#fail('bad-response');
  }

  /** A piece of the request body from the client. */
  onBody(chunk: Buffer): void {
    if (this.finished) return;
    this.#bytes += chunk.length;
    const max = this.#s.maxBodyBytes;
    if (max > 0 && this.#bytes > max) return this.#tooLarge();
    const rb = this.#reqBody;
    if (rb !== null) {
      const r = rb.append(chunk);
      if (r === 'pause') this.#source.pauseBody();
      else if (r === 'full') this.#fail('disk-full');
      return;
    }
    if (this.#chunks !== null) {
      if (this.#bytes > this.#s.retryBodyMax) {
        this.#chunks = null;
        this.#overflow = true;
      } else this.#chunks.push(chunk);
    }
    const conn = this.#conn;
    if (conn !== null && !this.#writeBody(conn, chunk)) this.#source.pauseBody();
  }

  /** A chunked body outgrew limits.maxBodyBytes (a declared length was refused before). */
  #tooLarge(): void {
    this.#dropConn();
    if (this.#gotResponse || this.#sink.headSent) {
      this.#sink.abort();
      this.#finish(0);
    } else this.#fail('too-large');
  }

  onBodyEnd(): void {
    this.#bodyDone = true;
    if (this.finished) return;
    const rb = this.#reqBody;
    if (rb !== null) {
      rb.onReady = () => {
        rb.onReady = null;
        if (this.finished) return;
        if (this.#chunkedToLength) this.#head = `${this.#head.slice(0, -2)}Content-Length: ${rb.length}\r\n\r\n`;
        this.#attempt();
      };
      rb.end();
      return;
    }
    if (this.#conn !== null) this.#endBody(this.#conn);
    if (this.#retryOnBodyEnd) {
      this.#retryOnBodyEnd = false;
      this.#retry();
    }
  }

  onUpstreamDrain(): void {
    if (this.#reqBody !== null) this.#reqBody.resume();
    else this.#source.resumeBody();
  }

  onSinkDrain(): void {
    const sp = this.#spool;
    if (sp?.active) {
      sp.drained();
      return;
    }
    this.waitingForClient = false;
    if (this.#conn !== null) {
      this.#conn.seen = performance.now();
      this.#conn.resumeReading();
    }
  }

  onResponseHead(status: number, message: string, raw: string[], _keepAlive: boolean, upgrade: boolean): boolean {
    if (this.finished) return true;
    if (status >= 100 && status < 200 && status !== 101) {
      // 100 Continue, 103 Early Hints: informational, not forwarded. A 1xx ends at its head
      // (RFC 9110 §15.2): true has llhttp read no body whatever its Content-Length says
      // (llhttp itself skips one only for 100, 102 and 103), so no byte of it reaches the
      // client; bytes the app sends as one are read as the next head (502).
      this.#info = true;
      return true;
    }
    // An upgrade this request did not ask for: not an answer to relay, and the socket now
    // speaks something else.
    if (upgrade || status === 101) return this.#badResponse(status, 'upstream switched protocols unasked');
    this.#gotResponse = true;
    this.status = status;
    if (this.#conn !== null) this.#conn.seen = performance.now();
    const isHead = this.method === 'HEAD';
    let te: string | undefined;
    let cl = false;
    let connection: string | undefined;
    let stream = false;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!;
      const n = name.length;
      if (n === 17) {
        const lower = name.toLowerCase();
        if (lower === 'transfer-encoding') te = te === undefined ? raw[i + 1]! : `${te}, ${raw[i + 1]}`;
        else if (lower === 'x-accel-buffering' && raw[i + 1]!.trim().toLowerCase() === 'no') stream = true;
      } else if (n === 14 && name.toLowerCase() === 'content-length') cl = true;
      else if (n === 10 && name.toLowerCase() === 'connection') connection = connection === undefined ? raw[i + 1] : `${connection}, ${raw[i + 1]}`;
      else if (n === 12 && name.toLowerCase() === 'content-type' && raw[i + 1]!.trimStart().toLowerCase().startsWith('text/event-stream')) stream = true;
    }
    const noBody = isHead || status === 204 || status === 304;
    // A status below 100 or a transfer coding other than chunked: 502 (headers.ts says why).
    const bad = unrelayable(status, te, noBody);
    if (bad !== null) return this.#badResponse(status, bad);
    this.#framing = noBody ? 'none' : te !== undefined ? 'chunked' : cl ? 'length' : 'close';
    // Events and what the app asks to stream (nginx's X-Accel-Buffering: no) go at the app's pace.
    const b = this.#s.buffering;
    this.#spoolable = b?.responses === true && !stream && this.#framing !== 'none';
    const headers = responseHeaders(status, raw, connection, this.id);
    if (this.addHeaders !== null) for (const h of this.addHeaders) headers.push(h);
    this.#sink.head(status, relayedPhrase(status, message), headers, this.#framing);
    return isHead;
  }

  /**
   * An answer that cannot be relayed: the client gets bgproxy's 502 (not a retry: the app
   * answered) and the upstream socket is closed, never read for another request. Returns
   * true (read no body) for onResponseHead.
   */
  #badResponse(status: number, why: string): boolean {
    this.#dropConn();
    this.#s.logger.debug({ color: this.target.color, status }, why);
    this.target.upstreamErrors[PROTOCOL]!++;
    this.#fail('bad-response');
    return true;
  }

  onResponseBody(chunk: Buffer): void {
    if (this.finished) return;
    const conn = this.#conn;
    if (conn !== null && this.#s.clock.now > conn.seen) conn.seen = this.#s.clock.now;
    const sp = this.#spool;
    if (sp?.active) {
      sp.push(chunk);
      return;
    }
    if (this.#sink.body(chunk)) return;
    if (this.#spoolable) {
      // The client fell behind: from now on what the app writes is held, not the app.
      const b = this.#s.buffering!;
      if (this.#spool === null) this.#spool = new ResponseSpool(this, b.store, b.memoryBytes);
      this.#spool.waitDrain();
    } else if (conn !== null) {
      this.waitingForClient = true;
      conn.pauseReading();
    }
  }

  // --- SpoolOwner: a response held for a slow client ---------------------------------------

  deliver(chunk: Buffer): boolean {
    return this.#sink.body(chunk);
  }

  spoolEmpty(): void {
    if (this.#upstreamDone && !this.finished) this.#complete();
  }

  spoolPressure(on: boolean): void {
    // Past the memory and disk bounds the app waits (back-pressure), as when streaming.
    const conn = this.#conn;
    this.waitingForClient = on;
    if (conn === null) return;
    if (on) conn.pauseReading();
    else {
      conn.seen = performance.now();
      conn.resumeReading();
    }
  }

  spoolFailed(err: Error): void {
    this.#bufferFailed(err);
  }

  onResponseEnd(): void {
    if (this.#info) {
      this.#info = false;
      return;
    }
    if (this.finished) return;
    const conn = this.#conn;
    this.#conn = null;
    // Reusable only when the app had the whole request and the body ended by its framing.
    conn?.done(this.#bodySent && this.#framing !== 'close');
    if (this.#spool?.active) {
      // The app is done and its socket back in the pool; the client still gets the rest.
      this.#upstreamDone = true;
      this.waitingForClient = false;
      return;
    }
    this.#complete();
  }

  #complete(): void {
    this.#sink.end();
    this.#finish(this.status);
  }

  /** Marks the upstream wait as timed out and drops its socket (504, or a cut-off client). */
  timeout(): void {
    if (this.finished || this.#conn === null) return;
    this.#timedOut = true;
    this.#conn.destroy();
  }

  onUpstreamError(code: string, conn: UpstreamConn): void {
    if (this.finished || conn !== this.#conn) return;
    this.#conn = null;
    const s = this.#s;
    if (this.#gotResponse || this.#sink.headSent) {
      // Cut off mid-response: the client must see it cut off too.
      this.#countError(code);
      this.#sink.abort();
      this.#finish(0);
      return;
    }
    const elapsed = performance.now() - this.started;
    const target = this.target;
    if (!this.#timedOut && code === 'ECONNREFUSED' && target.holdable && elapsed < s.holdMs && !this.#overflow) {
      // Nothing reached the app: safe to retry any method once it listens again.
      const delay = Math.min(25 * 2 ** Math.min(this.#attempts, 5), 500, s.holdMs - elapsed);
      setTimeout(() => this.#retry(), delay).unref();
      return;
    }
    const resetBeforeAnswer = !this.#timedOut && !this.#overflow && (code === 'ECONNRESET' || code === 'EPIPE') && IDEMPOTENT.has(this.method);
    if (resetBeforeAnswer && this.#attempts === 1 && conn.served > 0) {
      // The app closed an idle pooled socket as we wrote to it: retry once on a fresh one.
      this.#retry();
      return;
    }
    if (resetBeforeAnswer && !this.#resent && target.holdable && elapsed < s.holdMs) {
      // The app died under an idempotent request (a crash, kill -9): like nginx's
      // proxy_next_upstream, send it again once the restarted app listens. Only once,
      // so a request that crashes the app cannot crash it again and again.
      this.#resent = true;
      setTimeout(() => this.#retry(), Math.min(100, s.holdMs - elapsed)).unref();
      return;
    }
    const kind: ProxyFailure = this.#timedOut ? 'timeout' : code === 'ECONNREFUSED' ? 'refused' : 'bad-response';
    s.logger.debug({ code, color: target.color, kind }, 'upstream error');
    this.#countError(code);
    this.#fail(kind);
  }

  /** One failed exchange for the metrics, by what ended it (retries that then worked are not failures). */
  #countError(code: string): void {
    const kind = this.#timedOut ? TIMEOUT : code === 'ECONNREFUSED' ? REFUSED : code === 'HPE' ? PROTOCOL : RESET;
    this.target.upstreamErrors[kind]!++;
  }

  #retry(): void {
    if (this.finished) return;
    if (this.#overflow) {
      this.target.upstreamErrors[REFUSED]!++;
      return this.#fail('refused');
    }
    if (!this.#bodyDone) {
      // The body is still arriving: wait for it (or for the cap) before replaying.
      this.#retryOnBodyEnd = true;
      this.#source.resumeBody();
      return;
    }
    this.#attempt();
  }

  #fail(kind: ProxyFailure): void {
    const body = failureBody(kind, this.target.color, this.#s.upstreamTimeoutMs);
    const status = statusFor(kind);
    const headers = ['Content-Type', 'text/plain; charset=utf-8', 'Content-Length', String(Buffer.byteLength(body)), 'Cache-Control', 'no-store'];
    if (this.id !== undefined) headers.push('X-Request-Id', this.id);
    if (kind === 'disk-full') headers.push('Retry-After', '5');
    // Refused mid-upload: the rest of the body is not read as a request, the connection ends.
    const close = kind === 'too-large' || kind === 'disk-full';
    this.#sink.head(status, reasonPhrase(status), headers, this.method === 'HEAD' ? 'none' : 'length', close);
    if (this.method !== 'HEAD') this.#sink.body(Buffer.from(body));
    this.#sink.end();
    this.#finish(status);
  }

  /** The client went away: the upstream request goes with it. */
  abort(): void {
    if (this.finished) return;
    this.#dropConn();
    this.#finish(0);
  }

  /** Closes the upstream socket without hearing from it again. */
  #dropConn(): void {
    const conn = this.#conn;
    this.#conn = null;
    if (conn !== null) {
      conn.user = null;
      conn.destroy();
    }
  }

  #finish(status: number): void {
    this.finished = true;
    this.#reqBody?.close();
    this.#spool?.close();
    this.status = status;
    this.target.end(this.role, status);
    this.#owner.exchangeDone(this);
  }
}
