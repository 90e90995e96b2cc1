// Keep-alive connections to one color's app: a LIFO pool of sockets, each with its own
// response parser that hands what it reads to the exchange using the socket. A socket goes
// back to the pool only after the parser has finished with the bytes of the read that
// completed the response, so bytes an app sends after a complete response (stray bytes
// after a 204/304/HEAD answer) close that socket instead of being read as the next answer.
import net from 'node:net';
import {
  acquireParser,
  consumable,
  kOnBody,
  kOnExecute,
  kOnHeaders,
  kOnHeadersComplete,
  kOnMessageBegin,
  kOnMessageComplete,
  type NativeParser,
  type ParserError,
  RESPONSE,
  releaseParser,
} from './llhttp.js';
import { listenerCount, type PoolCandidate, type UncleanReason, unclean } from './pool-clean.js';

/** What an upstream connection reports to the exchange that holds it. */
export interface UpstreamUser {
  /** Response head; returns true to read no body (a HEAD request, a 1xx, an answer refused). */
  onResponseHead(status: number, message: string, raw: string[], keepAlive: boolean, upgrade: boolean): boolean;
  onResponseBody(chunk: Buffer): void;
  onResponseEnd(): void;
  /** The connection failed (connect error, reset, close before the response ended, bad bytes). */
  onUpstreamError(code: string, conn: UpstreamConn): void;
  /** The socket can take more of the request body. */
  onUpstreamDrain(): void;
  /** No upstream activity for upstreamTimeoutMs. */
  timeout(): void;
  /** Reading is paused for a slow client: not idle. */
  readonly waitingForClient: boolean;
}

/** Largest response head accepted from an app (Node's http client default). */
const MAX_RESPONSE_HEAD = 16 * 1024;

export class UpstreamConn implements PoolCandidate {
  readonly socket: net.Socket;
  readonly #parser: NativeParser;
  #consumed = false;
  user: UpstreamUser | null = null;
  /** Requests completed on this connection; > 0 means the next one is on a reused socket. */
  served = 0;
  connected = false;
  /** performance.now() when it went back to the pool. */
  idleSince = 0;
  /** Set when the response is complete; the pool takes it back after the current read. */
  #releasePending = false;
  #keepAlive = false;
  #reading = true;
  #headers: string[] = [];
  #dead = false;
  #inMessage = false;
  /** Listeners once connected (see pool-clean.ts). */
  listenerBaseline = 0;
  /** Coarse activity stamp for the upstream timeout (see Engine.tick). */
  seen = 0;

  constructor(
    readonly pool: UpstreamPool,
    port: number,
  ) {
    const socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
    this.socket = socket;
    const p = acquireParser(RESPONSE, MAX_RESPONSE_HEAD);
    this.#parser = p;
    p[kOnMessageBegin] = () => {
      // A new head starts from nothing: a previous answer's trailers never reach it.
      this.#headers = [];
      this.#inMessage = true;
      if (this.user === null || this.#releasePending) this.#stray();
    };
    p[kOnHeaders] = (headers: string[]) => {
      // Parts of a long head, or a chunked answer's trailers (dropped at its end, as nginx
      // drops them by default: the client's answer is re-chunked without them).
      for (const h of headers) this.#headers.push(h);
    };
    p[kOnHeadersComplete] = (
      _maj: number,
      _min: number,
      headers: string[] | undefined,
      _method: number,
      _url: string,
      status: number,
      message: string,
      upgrade: boolean,
      keepAlive: boolean,
    ): number => {
      const user = this.user;
      if (user === null || this.#releasePending) {
        this.#stray();
        return 1;
      }
      let raw = headers;
      if (raw === undefined) {
        raw = this.#headers;
        this.#headers = [];
      }
      this.#keepAlive = keepAlive;
      return user.onResponseHead(status, message, raw, keepAlive, upgrade) ? 1 : upgrade ? 2 : 0;
    };
    p[kOnBody] = (chunk: Buffer) => {
      if (this.user !== null && !this.#releasePending) this.user.onResponseBody(chunk);
      else this.#stray();
    };
    p[kOnMessageComplete] = () => {
      this.#headers = [];
      this.#inMessage = false;
      const user = this.user;
      if (user === null || this.#releasePending) return this.#stray();
      user.onResponseEnd();
    };
    p[kOnExecute] = (ret: number | ParserError) => this.#afterRead(ret);
    socket.on('connect', () => {
      this.connected = true;
      const handle = (socket as unknown as { _handle: unknown })._handle;
      if (consumable(handle)) {
        this.#consumed = true;
        p.consume(handle);
      } else socket.on('data', (d: Buffer) => this.#afterRead(p.execute(d)));
      this.listenerBaseline = listenerCount(socket);
    });
    socket.on('end', () => this.#onEnd());
    socket.on('error', (err: NodeJS.ErrnoException) => this.#fail(err.code ?? 'ECONNRESET'));
    socket.on('close', () => {
      this.#fail('ECONNRESET');
      this.pool.forget(this);
      releaseParser(p, this.#consumed);
    });
    socket.on('drain', () => this.user?.onUpstreamDrain());
  }

  get dead(): boolean {
    return this.#dead;
  }

  get inUse(): boolean {
    return this.user !== null;
  }

  get paused(): boolean {
    return !this.#reading;
  }

  get midResponse(): boolean {
    return this.#inMessage;
  }

  /** Called by the exchange when its response is complete: the socket may be reused. */
  done(reusable: boolean): void {
    this.user = null;
    this.served++;
    if (!reusable || !this.#keepAlive) {
      this.destroy();
      return;
    }
    this.#releasePending = true;
    // Out of a consumed read, kOnExecute follows; with 'data' events, #afterRead does. Either
    // way the pool gets it back once this read's bytes are all parsed.
  }

  #afterRead(ret: number | ParserError): void {
    if (typeof ret !== 'number') {
      // Bytes that are not HTTP: the exchange sees a bad response, an idle socket just closes.
      const user = this.user;
      this.destroy();
      if (user !== null && !this.#releasePending) user.onUpstreamError('HPE', this);
      return;
    }
    if (this.#releasePending && !this.#dead) {
      this.#releasePending = false;
      this.pool.release(this);
    }
  }

  #stray(): void {
    // Anything after a complete response, or while idle in the pool: this socket is done.
    this.#releasePending = false;
    this.destroy();
  }

  #onEnd(): void {
    // A close-delimited body ends here; anything else in progress was cut off.
    const user = this.user;
    if (user !== null) {
      const err = this.#parser.finish();
      if (err === undefined && this.user === null) {
        this.destroy();
        return;
      }
    }
    this.destroy();
  }

  #fail(code: string): void {
    this.#dead = true;
    const user = this.user;
    if (user !== null) {
      this.user = null;
      user.onUpstreamError(code, this);
    }
  }

  write(data: string | Buffer): boolean {
    const now = this.pool.clock.now;
    if (now > this.seen) this.seen = now;
    return this.socket.write(data);
  }

  pauseReading(): void {
    if (!this.#reading) return;
    this.#reading = false;
    if (this.#consumed) (this.socket as unknown as { _handle: { readStop(): number } | null })._handle?.readStop();
    else this.socket.pause();
  }

  resumeReading(): void {
    if (this.#reading) return;
    this.#reading = true;
    if (this.#consumed) (this.socket as unknown as { _handle: { readStart(): number } | null })._handle?.readStart();
    else this.socket.resume();
  }

  destroy(): void {
    this.#dead = true;
    this.socket.destroy();
  }
}

/** A coarse clock shared by the engine: `now` is performance.now() as of the last tick. */
export interface Clock {
  now: number;
}

/** The clock every pool and exchange reads; Bgproxy's tick moves it. */
export const engineClock: Clock = { now: performance.now() };

/** One color's keep-alive sockets. */
export class UpstreamPool {
  readonly #idle: UpstreamConn[] = [];
  readonly #all = new Set<UpstreamConn>();
  #closed = false;

  constructor(
    readonly port: number,
    /** Idle sockets are closed after this long (below the app's own keep-alive timeout). */
    readonly idleMs: number,
    readonly clock: Clock,
  ) {}

  /** A pooled socket (most recently used first) or a new one. */
  acquire(): UpstreamConn {
    const now = performance.now();
    let conn = this.#idle.pop();
    while (conn !== undefined && (conn.dead || now - conn.idleSince >= this.idleMs)) {
      conn.destroy();
      conn = this.#idle.pop();
    }
    if (conn !== undefined) return conn;
    conn = new UpstreamConn(this, this.port);
    this.#all.add(conn);
    return conn;
  }

  /** Sockets refused by unclean() on their way back, by reason. */
  readonly uncleanReleases: Partial<Record<UncleanReason, number>> = {};

  /** Takes a socket back only when unclean() finds nothing wrong; otherwise it is destroyed. */
  release(conn: UpstreamConn): void {
    if (this.#closed) {
      conn.destroy();
      return;
    }
    const why = unclean(conn);
    if (why !== null) {
      this.uncleanReleases[why] = (this.uncleanReleases[why] ?? 0) + 1;
      conn.destroy();
      return;
    }
    conn.idleSince = performance.now();
    this.#idle.push(conn);
  }

  forget(conn: UpstreamConn): void {
    this.#all.delete(conn);
    const i = this.#idle.indexOf(conn);
    if (i >= 0) this.#idle.splice(i, 1);
  }

  /** Closes idle sockets past their time, and times out requests whose app went quiet (the engine's tick). */
  sweep(now: number, upstreamTimeoutMs: number): void {
    while (this.#idle.length > 0 && now - this.#idle[0]!.idleSince >= this.idleMs) this.#idle.shift()!.destroy();
    for (const c of this.#all) {
      const u = c.user;
      if (u !== null && !u.waitingForClient && now - c.seen >= upstreamTimeoutMs) u.timeout();
    }
  }

  get sockets(): number {
    return this.#all.size;
  }

  close(): void {
    this.#closed = true;
    for (const c of this.#all) c.destroy();
  }
}
