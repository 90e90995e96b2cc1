// The front door on the wire: a net.Server whose connections are parsed by llhttp directly
// (no IncomingMessage/ServerResponse), one request at a time per connection (pipelined ones
// wait, with their bytes, until the one before is answered), with the timeouts of an HTTP
// server kept by one coarse sweep instead of a timer per request, and a graceful close that
// lets every connection finish what it started.
import net from 'node:net';
import type { LimitsConfig, TimeoutsConfig } from '../config.js';
import type { Exchange, Framing, Sink, Source } from './exchange.js';
import {
  acquireParser,
  consumable,
  kOnBody,
  kOnExecute,
  kOnHeaders,
  kOnHeadersComplete,
  kOnMessageBegin,
  kOnMessageComplete,
  METHODS,
  type NativeParser,
  type ParserError,
  REQUEST,
  releaseParser,
} from './llhttp.js';
import { statusLine } from './status.js';

/** Largest body an upgrade request may carry (it is read whole before the app is contacted). */
export const MAX_UPGRADE_BODY = 64 * 1024;

/** A request as parsed from the wire (or taken from an IncomingMessage when embedded). */
export interface RequestHead {
  method: string;
  url: string;
  versionMajor: number;
  versionMinor: number;
  /** [name, value, name, value, …] as received. */
  raw: string[];
  upgrade: boolean;
  /** The client may keep the connection after this request. */
  keepAlive: boolean;
}

/** A request on a front connection, from its head to the end of its answer. */
export class FrontRequest implements RequestHead {
  method: string;
  url: string;
  versionMajor: number;
  versionMinor: number;
  raw: string[];
  upgrade: boolean;
  keepAlive: boolean;
  exchange: Exchange | null = null;
  /** Body bytes that arrived before an exchange took the request (pipelined, or held by a gate). */
  pending: Buffer[] | null = null;
  /** The whole request (head and body) has been read. */
  received = false;
  /** The answer is complete (or abandoned). */
  answered = false;
  /** Body bytes of an upgrade request read so far (bounded by MAX_UPGRADE_BODY). */
  bodyBytes = 0;
  /** Set by the handlers for the access log and the metrics: the Host and its route (null: refused before routing). */
  host = '';
  route: 'live' | 'next' | null = null;
  started = 0;

  constructor(method: string, url: string, maj: number, min: number, raw: string[], upgrade: boolean, keepAlive: boolean) {
    this.method = method;
    this.url = url;
    this.versionMajor = maj;
    this.versionMinor = min;
    this.raw = raw;
    this.upgrade = upgrade;
    this.keepAlive = keepAlive;
  }
}

/** A request answered here instead of forwarded. */
export interface Refused {
  status: number;
  headers?: ReadonlyArray<readonly [string, string]> | undefined;
  body: string;
}

/** What the front door asks of the proxy's request logic. */
export interface FrontHandlers {
  /** A request is next in line on `conn`: answer it (conn.answer) or forward it (conn.forward). */
  request(conn: FrontConn, req: FrontRequest): void;
  /** An upgrade request; `head` holds bytes the client sent after it. The socket is the handler's now. */
  upgrade(conn: FrontConn, req: FrontRequest, head: Buffer): void;
  /**
   * An upgrade request's head, checked before its body (if any) is read: a refusal is
   * answered at once and closes the connection; null lets it be read and handed to upgrade().
   */
  refuseUpgrade?(conn: FrontConn, req: FrontRequest): Refused | null;
  /** The request is over (answered, cut off or abandoned): status 0 when it was not answered. */
  done?(conn: FrontConn, req: FrontRequest, status: number): void;
}


const CONTINUE = 'HTTP/1.1 100 Continue\r\n\r\n';
const CRLF = '\r\n';
const LAST_CHUNK = '0\r\n\r\n';

// Why reading is stopped; reading resumes when no reason is left.
const PAUSE_UPSTREAM = 1; // the upstream socket is full
const PAUSE_QUEUE = 2; // a request waits for the one before it
const PAUSE_DRAIN = 4; // the client is not reading our answer
const PAUSE_UPGRADE = 8; // an upgrade waits for the answers before it; what follows is not HTTP

export class FrontConn implements Sink, Source {
  readonly socket: net.Socket;
  readonly server: FrontServer;
  readonly #parser: NativeParser;
  #consumed = false;
  /** Requests read and not yet answered, oldest first; the first one is being answered. */
  readonly #queue: FrontRequest[] = [];
  /** The request whose head and body the parser is reading now. */
  #reading: FrontRequest | null = null;
  /** An upgrade request whose head was just read: handed over once the parser says where it ends. */
  #upgrade: FrontRequest | null = null;
  /** An upgrade request read behind unanswered ones: handed over when its turn comes. */
  #waitingUpgrade: { req: FrontRequest; rest: Buffer } | null = null;
  #headers: string[] = [];
  #url = '';
  #paused = 0;
  #closing = false;
  /** How the answer in progress is framed to the client. */
  #chunked = false;
  #headSent = false;
  /** Close once the answer in progress is written. */
  #closeAfter = false;
  /** A parse error waiting for the answer in progress to finish. */
  #error: number | null = null;
  upgraded = false;
  // Timestamps (performance.now()) for the sweep; -1 when not in that phase.
  headStart: number;
  requestStart = -1;
  idleSince = -1;
  /** Since when the client has not taken our answer's bytes (a full socket), for timeouts.sendMs. */
  stalledSince = -1;
  /** Requests begun on this connection (a close decided on an idle one checks it did not change). */
  begun = 0;

  constructor(server: FrontServer, socket: net.Socket) {
    this.server = server;
    this.socket = socket;
    this.headStart = performance.now();
    const p = acquireParser(REQUEST, server.limits.maxHeaderBytes);
    this.#parser = p;
    p[kOnMessageBegin] = () => this.#onMessageBegin();
    p[kOnHeaders] = (headers: string[], url: string) => {
      // Long header blocks arrive in parts of 32 fields (bounded by maxHeaderBytes in all).
      // So do a chunked body's trailers, after it: those are dropped at the message's end
      // (#onMessageComplete), never carried into the next request's head.
      for (const h of headers) this.#headers.push(h);
      if (url) this.#url += url;
    };
    p[kOnHeadersComplete] = (
      maj: number,
      min: number,
      headers: string[] | undefined,
      method: number,
      url: string | undefined,
      _s: unknown,
      _m: unknown,
      upgrade: boolean,
      keepAlive: boolean,
    ): number => {
      let raw = headers;
      if (raw === undefined) {
        raw = this.#headers;
        this.#headers = [];
      }
      let u = url;
      if (!u) {
        u = this.#url;
        this.#url = '';
      }
      return this.#onHead(new FrontRequest(METHODS[method] ?? 'GET', u, maj, min, raw, upgrade, keepAlive));
    };
    p[kOnBody] = (chunk: Buffer) => {
      const r = this.#reading;
      if (r === null || r.answered) return;
      if (r.upgrade && this.#upgradeBody(r, chunk)) return;
      if (r.exchange !== null) r.exchange.onBody(chunk);
      else if (r.pending === null) r.pending = [chunk];
      else r.pending.push(chunk);
    };
    p[kOnMessageComplete] = () => this.#onMessageComplete();
    p[kOnExecute] = (ret: number | ParserError) => this.#afterExecute(ret, null);
    if (consumable((socket as unknown as { _handle: unknown })._handle)) {
      this.#consumed = true;
      p.consume((socket as unknown as { _handle: unknown })._handle);
    } else {
      socket.on('data', (d: Buffer) => this.#afterExecute(p.execute(d), d));
    }
    socket.on('end', () => this.#onEnd());
    socket.on('error', () => socket.destroy());
    socket.on('drain', () => this.#onDrain());
    socket.on('close', () => this.#onClose());
  }

  // --- reading ----------------------------------------------------------------------------

  #onMessageBegin(): void {
    // A new head starts from nothing (see #onMessageComplete).
    this.#headers = [];
    this.#url = '';
    const now = performance.now();
    this.begun++;
    this.idleSince = -1;
    if (this.headStart < 0) this.headStart = now;
    this.requestStart = now;
  }

  #onHead(req: FrontRequest): number {
    this.headStart = -1;
    // Once this connection is to close after its answer (a refusal, Connection: close, a
    // graceful stop), nothing read after it is a request: never routed, never forwarded.
    if (this.upgraded || this.#closing || this.#closeAfter) {
      this.#reading = null;
      return 0;
    }
    req.started = performance.now();
    this.#reading = req;
    this.#queue.push(req);
    if (req.upgrade) {
      // Handed over in #afterExecute, once the parser has read the whole request.
      this.#upgrade = req;
      const refused = this.#queue.length === 1 ? (this.server.handlers.refuseUpgrade?.(this, req) ?? null) : null;
      if (refused !== null) {
        this.#upgrade = null;
        this.answer(req, refused.status, refused.headers ?? [], refused.body, true);
      }
      return 0;
    }
    if (this.#queue.length === 1) this.#dispatch(req);
    else this.#pause(PAUSE_QUEUE);
    return 0;
  }

  #onMessageComplete(): void {
    // Trailers of a chunked body (and the URL llhttp passes with them) are dropped, as nginx
    // drops a request's trailers: the body goes on de-chunked or re-chunked without them.
    this.#headers = [];
    this.#url = '';
    this.requestStart = -1;
    const r = this.#reading;
    this.#reading = null;
    if (r === null) return;
    r.received = true;
    if (r.answered) this.#next(r);
    else if (r.exchange !== null) r.exchange.onBodyEnd();
  }

  /**
   * A piece of an upgrade request's body: kept whole for the tunnel (the app gets it as a
   * body, before any byte of the new protocol). Over MAX_UPGRADE_BODY: 413 and close.
   * Returns true when the piece was refused.
   */
  #upgradeBody(r: FrontRequest, chunk: Buffer): boolean {
    r.bodyBytes += chunk.length;
    if (r.bodyBytes <= MAX_UPGRADE_BODY) return false;
    this.#upgrade = null;
    r.pending = null;
    if (this.#queue[0] === r) this.answer(r, 413, [], 'bgproxy: an upgrade request body is limited to 64 KiB\n', true);
    else this.socket.destroy();
    return true;
  }

  #afterExecute(ret: number | ParserError, data: Buffer | null): void {
    if (typeof ret !== 'number') return this.#parseError(ret);
    const r = this.#upgrade;
    // An upgrade request is handed over once the parser has read all of it, body included:
    // llhttp stops right after it, so the bytes past `ret` are the new protocol's.
    if (r?.received) {
      this.#upgrade = null;
      const d = data ?? this.#parser.getCurrentBuffer();
      this.#handOver(r, d.subarray(ret));
    }
  }

  #handOver(req: FrontRequest, head: Buffer): void {
    this.#reading = null;
    this.requestStart = -1;
    if (this.#queue[0] !== req) {
      // Pipelined behind unanswered requests: those are answered first (their answers are
      // not lost); nothing more is read, as what follows belongs to the new protocol.
      this.#waitingUpgrade = { req, rest: head };
      this.#pause(PAUSE_UPGRADE);
      return;
    }
    this.upgraded = true;
    if (this.#consumed) {
      this.#parser.unconsume();
      this.#consumed = false;
      if (this.#paused !== 0) {
        // Reading was stopped on the handle itself (waiting its turn): the stream, which
        // reads from here on, only restarts a handle it stopped itself.
        this.#paused = 0;
        const h = (this.socket as unknown as { _handle: { readStart(): number; reading: boolean } | null })._handle;
        if (h !== null) {
          h.reading = true;
          h.readStart();
        }
      }
    } else if (this.#paused !== 0) {
      this.#paused = 0;
      this.socket.resume();
    }
    this.socket.removeAllListeners('data');
    this.socket.removeAllListeners('drain');
    this.socket.removeAllListeners('end');
    this.socket.removeAllListeners('error');
    this.socket.on('error', () => this.socket.destroy());
    this.server.upgraded.add(this);
    this.server.handlers.upgrade(this, req, head);
  }

  #parseError(err: ParserError): void {
    const code = err.code;
    // Data after a request that said Connection: close is not an error worth an answer.
    const status = code === 'HPE_HEADER_OVERFLOW' ? 431 : code === 'HPE_CLOSED_CONNECTION' ? 0 : 400;
    this.#closing = true;
    this.#pause(PAUSE_QUEUE);
    const reading = this.#reading;
    if (reading !== null && !reading.received && this.#queue[0] === reading) {
      // A body that breaks its framing (a bad chunk size, a missing CRLF): the upstream
      // request is cut off; the client gets 400 unless its answer had already begun.
      if (reading.answered) return void this.socket.end();
      if (this.#headSent) return void this.socket.destroy();
      const ex = reading.exchange;
      reading.exchange = null;
      if (ex !== null) ex.abort();
      this.answer(reading, status === 0 ? 400 : status, [], 'bgproxy: malformed request body\n', true);
      return;
    }
    const current = this.#queue[0];
    if (current !== undefined && !current.answered) {
      // The bad bytes came after a complete request: answer it, then refuse and close.
      this.#closeAfter = true;
      this.#error = status === 0 ? null : status;
      return;
    }
    if (status === 0 || this.#headSent) this.socket.end();
    else this.#writeRefusal(status);
  }

  #writeRefusal(status: number): void {
    this.socket.end(`${statusLine(status)}Content-Length: 0\r\nConnection: close\r\n\r\n`);
    this.#pause(PAUSE_QUEUE);
  }

  /** Stops the request in progress at a timeout: 408 when nothing was answered yet. */
  timeout(): void {
    this.#closing = true;
    this.headStart = -1;
    this.requestStart = -1;
    const answering = this.#headSent;
    const ex = this.#queue[0]?.exchange;
    if (ex) ex.abort();
    if (answering || this.socket.destroyed) this.socket.destroy();
    else this.#writeRefusal(408);
  }

  #onEnd(): void {
    // The client is done sending. As Node's http.Server does by default, a request still in
    // flight is abandoned (its upstream request too): a client that half-closes has left.
    if (this.#queue.length === 0 && this.#reading === null) this.socket.end();
    else this.socket.destroy();
  }

  #onClose(): void {
    this.server.forget(this);
    const queue = this.#queue.splice(0);
    for (const r of queue) {
      if (r.answered) continue;
      if (r.exchange !== null) r.exchange.abort();
      else {
        r.answered = true;
        this.server.handlers.done?.(this, r, 0);
      }
    }
    releaseParser(this.#parser, this.#consumed);
    this.#consumed = false;
  }

  #pause(reason: number): void {
    const was = this.#paused;
    this.#paused |= reason;
    if (was === 0) this.#readStop();
  }

  #resume(reason: number): void {
    if ((this.#paused & reason) === 0) return;
    this.#paused &= ~reason;
    if (this.#paused === 0 && !this.socket.destroyed) this.#readStart();
  }

  #readStop(): void {
    if (this.#consumed) (this.socket as unknown as { _handle: { readStop(): number } | null })._handle?.readStop();
    else this.socket.pause();
  }

  #readStart(): void {
    if (this.#consumed) (this.socket as unknown as { _handle: { readStart(): number } | null })._handle?.readStart();
    else this.socket.resume();
  }

  // --- Source (the request body) ----------------------------------------------------------

  pauseBody(): void {
    this.#pause(PAUSE_UPSTREAM);
  }

  resumeBody(): void {
    this.#resume(PAUSE_UPSTREAM);
  }

  // --- answering --------------------------------------------------------------------------

  #dispatch(req: FrontRequest): void {
    // Node's http.Server answers "Expect: 100-continue" itself and refuses other expectations.
    if (req.versionMinor === 1 && req.versionMajor === 1) {
      const expect = headerValue(req.raw, 'expect');
      if (expect !== undefined) {
        if (expect.toLowerCase() !== '100-continue') {
          this.answer(req, 417, [], '', true);
          return;
        }
        // A body it may not send is refused before the client sends it.
        if (tooLarge(req.raw, this.server.limits.maxBodyBytes)) {
          this.answer(req, 413, [], 'bgproxy: request body too large\n', true);
          return;
        }
        this.socket.write(CONTINUE);
      }
    }
    this.server.handlers.request(this, req);
  }

  /** Forwards `req` through `ex` (created by the handlers with this connection as sink and source). */
  forward(req: FrontRequest, ex: Exchange): void {
    req.exchange = ex;
    this.#headSent = false;
    ex.start();
    const pending = req.pending;
    if (pending !== null) {
      req.pending = null;
      for (const c of pending) ex.onBody(c);
    }
    if (req.received && !ex.finished) ex.onBodyEnd();
    // A request held by a gate or pipelined: its bytes may flow again.
    this.#resume(PAUSE_QUEUE | PAUSE_UPSTREAM);
  }

  /** Answers `req` here (refusals, gate answers). */
  answer(req: FrontRequest, status: number, headers: ReadonlyArray<readonly [string, string]>, body: string | Buffer, close: boolean): void {
    if (req.answered) return;
    if (close) this.#closeAfter = true;
    const len = typeof body === 'string' ? Buffer.byteLength(body) : body.length;
    let head = statusLine(status);
    let hasType = false;
    for (const [n, v] of headers) {
      if (n.length === 12 && n.toLowerCase() === 'content-type') hasType = true;
      head += `${n}: ${v}\r\n`;
    }
    if (!hasType && len > 0) head += 'Content-Type: text/plain; charset=utf-8\r\n';
    head += `Content-Length: ${len}\r\nCache-Control: no-store\r\n`;
    head += this.#connectionHeader(req);
    this.socket.cork();
    this.socket.write(`${head}\r\n`);
    if (req.method !== 'HEAD' && len > 0) this.socket.write(body);
    this.socket.uncork();
    this.#answered(req, status);
  }

  #connectionHeader(req: FrontRequest): string {
    if (!req.keepAlive || this.server.stopping || this.#closing) this.#closeAfter = true;
    return this.#closeAfter ? 'Connection: close\r\n' : 'Connection: keep-alive\r\n';
  }

  get headSent(): boolean {
    return this.#headSent;
  }

  head(status: number, message: string, headers: string[], framing: Framing, close?: boolean): void {
    const req = this.#queue[0]!;
    if (close === true) this.#closeAfter = true;
    let head = `HTTP/1.1 ${status} ${message}\r\n`;
    for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`;
    this.#chunked = false;
    if (framing === 'chunked' || framing === 'close') {
      // Re-framed for this client: chunked on HTTP/1.1, delimited by the close on HTTP/1.0.
      if (req.versionMinor >= 1) {
        head += 'Transfer-Encoding: chunked\r\n';
        this.#chunked = true;
      } else this.#closeAfter = true;
    }
    head += this.#connectionHeader(req);
    this.#headSent = true;
    this.socket.cork();
    // latin1: llhttp gives the app's bytes as latin1 strings; UTF-8 would re-encode any above 0x7F.
    this.socket.write(`${head}\r\n`, 'latin1');
    process.nextTick(uncork, this.socket);
  }

  body(chunk: Buffer): boolean {
    const s = this.socket;
    let ok: boolean;
    if (this.#chunked) {
      s.cork();
      s.write(`${chunk.length.toString(16)}\r\n`);
      s.write(chunk);
      ok = s.write(CRLF);
      s.uncork();
    } else ok = s.write(chunk);
    if (!ok) {
      this.#pause(PAUSE_DRAIN);
      if (this.stalledSince < 0) this.stalledSince = performance.now();
    }
    return ok;
  }

  end(): void {
    if (this.#chunked) this.socket.write(LAST_CHUNK);
  }

  /** The exchange forwarding the first request in line is over (answered, failed or aborted). */
  exchangeDone(ex: Exchange): void {
    const req = this.#queue[0];
    if (req !== undefined && req.exchange === ex) this.#answered(req, ex.status);
  }

  /** Holds the request in line (a gate's wait): nothing more is read until it is forwarded or answered. */
  hold(): void {
    this.#pause(PAUSE_QUEUE);
  }

  abort(): void {
    this.socket.destroy();
  }

  /** Cut at timeouts.sendMs: the answer in progress is abandoned (its temp file removed). */
  abortStalled(): void {
    this.stalledSince = -1;
    this.#queue[0]?.exchange?.abort();
    this.socket.destroy();
  }

  #onDrain(): void {
    this.stalledSince = -1;
    this.#resume(PAUSE_DRAIN);
    const ex = this.#queue[0]?.exchange;
    if (ex && (ex.waitingForClient || ex.spooling)) ex.onSinkDrain();
  }

  /** The answer to the first request in line is complete. */
  #answered(req: FrontRequest, status: number): void {
    if (req.answered) return;
    req.answered = true;
    this.#headSent = false;
    this.#chunked = false;
    // Whatever held reading for this answer is over (the rest of an unread body is dropped).
    this.#resume(PAUSE_DRAIN | PAUSE_UPSTREAM);
    this.server.handlers.done?.(this, req, status);
    if (req.received) this.#next(req);
    else if (this.#closeAfter) this.socket.end();
    // else: the rest of its body is read and dropped, then the next request goes.
  }

  /** `req` is answered and fully read: on to the next request, or idle, or closed. */
  #next(req: FrontRequest): void {
    if (this.#queue[0] === req) this.#queue.shift();
    this.#resume(PAUSE_DRAIN);
    this.#resume(PAUSE_UPSTREAM);
    if (this.#closeAfter || this.socket.destroyed) {
      if (this.#error !== null) {
        const status = this.#error;
        this.#error = null;
        this.#writeRefusal(status);
        return;
      }
      this.socket.end();
      return;
    }
    const next = this.#queue[0];
    const waiting = this.#waitingUpgrade;
    if (waiting !== null && next === waiting.req) {
      this.#waitingUpgrade = null;
      this.#handOver(waiting.req, waiting.rest);
      return;
    }
    if (next === undefined) {
      this.idleSince = performance.now();
      this.#resume(PAUSE_QUEUE);
      return;
    }
    this.#dispatch(next);
    this.#resume(PAUSE_QUEUE);
  }

  /** Nothing is being read or answered on this connection. */
  get idle(): boolean {
    return this.#queue.length === 0 && this.#reading === null && !this.upgraded;
  }

  /** A graceful close began: an idle connection is told nothing, a busy one closes after its answer. */
  stop(): void {
    if (this.#queue.length > 0 && !this.#headSent) this.#closeAfter = true;
  }
}

/**
 * Closes the connections a sweep found idle too long, unless a request began on one since.
 * Run from setImmediate, after the loop's poll phase: when the loop ran late (a busy
 * machine) the timer phase sweeps before the bytes that arrived meanwhile are read, and a
 * request already waiting in the socket would otherwise be answered with a reset.
 */
function closeIdle(found: Array<[FrontConn, number]>): void {
  for (const [c, begun] of found) if (c.begun === begun && c.idle) c.socket.destroy();
}

/** Listens on an address or an inherited socket (backlog 1024); rejects with the listen error. */
export function listenOn(server: net.Server, where: { host: string; port: number } | { fd: number }): Promise<net.AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ ...where, backlog: 1024 }, () => {
      server.off('error', reject);
      resolve(server.address() as net.AddressInfo);
    });
  });
}

function uncork(s: net.Socket): void {
  s.uncork();
}

/** Whether a declared Content-Length is over `max` (0: no limit). */
export function tooLarge(raw: string[], max: number): boolean {
  if (max <= 0) return false;
  const cl = headerValue(raw, 'content-length');
  return cl !== undefined && Number(cl) > max;
}

/** The first value of a header by lower-case name in a raw [name, value, …] list. */
export function headerValue(raw: string[], lower: string): string | undefined {
  const n = lower.length;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === n && name.toLowerCase() === lower) return raw[i + 1];
  }
  return undefined;
}

/** How often the sweep runs: a quarter of the shortest timeout, between 25 ms and 1 s. */
export function checkIntervalMs(timeouts: TimeoutsConfig): number {
  const shortest = Math.min(
    timeouts.headersMs,
    timeouts.requestMs > 0 ? timeouts.requestMs : Number.POSITIVE_INFINITY,
    timeouts.keepAliveMs > 0 ? timeouts.keepAliveMs : Number.POSITIVE_INFINITY,
  );
  return Math.max(25, Math.min(1000, Math.floor(shortest / 4)));
}

/** How long a keep-alive connection must have been idle before a graceful close ends it. */
export const IDLE_GRACE_MS = 500;

export class FrontServer {
  readonly net: net.Server;
  readonly conns = new Set<FrontConn>();
  /** Connections handed to an upgrade (websockets). */
  readonly upgraded = new Set<FrontConn>();
  stopping = false;
  timeouts: TimeoutsConfig;
  limits: LimitsConfig;
  readonly handlers: FrontHandlers;
  #timer: NodeJS.Timeout | null = null;
  readonly #adopted: net.Server[] = [];
  /** The graceful close has finished: nothing is accepted any more. */
  #closed = false;

  constructor(handlers: FrontHandlers, timeouts: TimeoutsConfig, limits: LimitsConfig) {
    this.handlers = handlers;
    this.timeouts = timeouts;
    this.limits = limits;
    this.net = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => this.accept(socket));
    this.#schedule();
  }

  /**
   * Takes a connection from anywhere (the listener, a TLS server, a test). During a
   * graceful close one still comes from an adopted listener (a TLS handshake that began
   * before it): it is served like the others, its answer says `Connection: close`.
   */
  accept(socket: net.Socket): void {
    if (this.#closed) {
      socket.destroy();
      return;
    }
    this.conns.add(new FrontConn(this, socket));
  }

  /**
   * A listener that hands its connections to accept() (the TLS listener): close() stops it
   * with the plain one and waits until it has closed, so connections it hands in late are
   * still drained.
   */
  adopt(listener: net.Server): void {
    this.#adopted.push(listener);
  }

  forget(conn: FrontConn): void {
    this.conns.delete(conn);
    this.upgraded.delete(conn);
  }

  /** New timeouts or limits (a config reload); the sweep interval follows. */
  configure(timeouts: TimeoutsConfig, limits: LimitsConfig): void {
    this.timeouts = timeouts;
    this.limits = limits;
    this.#schedule();
  }

  #schedule(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = setInterval(() => this.sweep(), checkIntervalMs(this.timeouts));
    this.#timer.unref();
  }

  /** Closes what overstayed: slow heads and bodies (408), idle keep-alive connections. */
  sweep(): void {
    const now = performance.now();
    const { headersMs, requestMs, keepAliveMs, sendMs } = this.timeouts;
    const headers = requestMs > 0 ? Math.min(headersMs, requestMs) : headersMs;
    const idle: Array<[FrontConn, number]> = [];
    for (const c of this.conns) {
      if (c.upgraded) continue;
      if (sendMs > 0 && c.stalledSince >= 0 && now - c.stalledSince >= sendMs) {
        // The client stopped reading our answer (nginx's send_timeout): cut, its buffers freed.
        c.abortStalled();
        continue;
      }
      if (c.idleSince >= 0) {
        if (now - c.idleSince >= keepAliveMs) idle.push([c, c.begun]);
        continue;
      }
      if (c.headStart >= 0 && now - c.headStart >= headers) c.timeout();
      else if (requestMs > 0 && c.requestStart >= 0 && now - c.requestStart >= requestMs) c.timeout();
    }
    if (idle.length > 0) setImmediate(closeIdle, idle);
  }

  listen(where: { host: string; port: number } | { fd: number }): Promise<net.AddressInfo> {
    return listenOn(this.net, where);
  }

  /**
   * Stops accepting (a socket passed in by systemd stays open for the next serve) and lets
   * every connection finish its requests: each answer from now on says `Connection: close`,
   * connections idle for `idleGraceMs` are closed, websockets once no HTTP request is in
   * flight. Resolves once every connection is gone, or at `timeoutMs` (then they are cut).
   */
  close(timeoutMs: number, idleGraceMs = IDLE_GRACE_MS): Promise<{ forced: boolean }> {
    this.stopping = true;
    for (const c of this.conns) c.stop();
    const idleSince = new Map<FrontConn, number>();
    return new Promise((resolve) => {
      let forced = false;
      const sweep = (): void => {
        const now = performance.now();
        let httpBusy = false;
        const idle: Array<[FrontConn, number]> = [];
        for (const c of this.conns) if (!c.upgraded && !c.idle) httpBusy = true;
        for (const c of this.conns) {
          if (c.upgraded) {
            if (!httpBusy) c.socket.destroy();
            continue;
          }
          if (!c.idle) {
            c.stop();
            idleSince.delete(c);
            continue;
          }
          const since = idleSince.get(c);
          if (since === undefined) idleSince.set(c, now);
          else if (now - since >= idleGraceMs) idle.push([c, c.begun]);
        }
        if (idle.length > 0) setImmediate(closeIdle, idle);
      };
      // Connections handed in by accept() from elsewhere (an adopted TLS listener) are not
      // the plain listener's: net's close does not wait for them, so this does.
      let open = 1 + this.#adopted.length;
      const finish = (): void => {
        if (open > 0 || this.conns.size > 0 || this.#closed) return;
        this.#closed = true;
        clearInterval(timer);
        clearTimeout(deadline);
        if (this.#timer) clearInterval(this.#timer);
        resolve({ forced });
      };
      const timer = setInterval(() => {
        sweep();
        finish();
      }, 50);
      const deadline = setTimeout(() => {
        forced = true;
        for (const c of this.conns) c.socket.destroy();
      }, timeoutMs);
      const closed = (): void => {
        open--;
        finish();
      };
      this.net.close(closed);
      for (const l of this.#adopted) l.close(closed);
      sweep();
    });
  }
}
