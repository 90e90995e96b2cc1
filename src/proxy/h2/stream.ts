// One HTTP/2 stream as a request of the proxy: its head as the HTTP/1.1 request head the
// checks, gates and exchange already take (Host from :authority, cookies joined, pseudo-
// and connection-specific fields gone), and the stream as the exchange's client side: the
// response becomes HEADERS and DATA frames, and back-pressure holds both ways (a full
// stream window pauses reading from the app; an app that does not read pauses the stream,
// so the client's window closes).
import http2 from 'node:http2';
import type { Socket } from 'node:net';
import type tls from 'node:tls';
import type { RequestCounts } from '../../metrics/requests.js';
import type { AccessLog } from '../access-log.js';
import type { Exchange, ExchangeOwner, Framing, Sink, Source } from '../exchange.js';
import type { RequestHead } from '../front.js';
import { METHODS } from '../llhttp.js';

const { NGHTTP2_CANCEL, NGHTTP2_FLAG_END_STREAM, NGHTTP2_INTERNAL_ERROR, NGHTTP2_NO_ERROR } = http2.constants;

/**
 * RFC 9113 8.2.2: connection-specific fields are never forwarded, either way (nghttp2
 * already refuses them in requests; an app may send them in responses).
 */
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'http2-settings']);

/** Why a request is refused before it reaches the proxy's checks. */
export interface Refused {
  status: number;
  reason: string;
  /** A malformed request (RFC 9113 8.1.1): reset with PROTOCOL_ERROR, not answered. */
  malformed?: true;
}

/** The methods the HTTP/1.1 front parses (llhttp's list): an h2 request takes no others. */
const KNOWN_METHODS = new Set(METHODS);
/** RFC 9113 8.3.1: an http or https :path is origin form, "/" and visible ASCII (RFC 9112 3.2.1). */
const ORIGIN_FORM = /^\/[\x21-\x7e]*$/;
const DIGITS = /^[0-9]+$/;

function malformed(reason: string): Refused {
  return { status: 400, reason, malformed: true };
}

/**
 * A request head taken from an h2 HEADERS block, or why it is refused. The header list
 * size (RFC 9113 6.5.2: names, values and 32 octets per field) is checked here, since
 * node:http2 applies its SETTINGS only once the client has acknowledged them.
 */
export function headOf(raw: string[], endStream: boolean, maxHeaderListSize: number): RequestHead | Refused {
  let size = 0;
  for (let i = 0; i < raw.length; i++) size += raw[i]!.length + (i & 1) * 32;
  if (size > maxHeaderListSize) return { status: 431, reason: 'header list too large' };
  let method = '';
  let path = '';
  let scheme: string | undefined;
  let authority: string | undefined;
  const out: string[] = [];
  let cookie: string | undefined;
  let host: string | undefined;
  let length = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    if (name.charCodeAt(0) === 58 /* : */) {
      if (name === ':method') method = value;
      else if (name === ':path') path = value;
      else if (name === ':scheme') scheme = value;
      else if (name === ':authority') authority = value;
      continue;
    }
    switch (name) {
      case 'cookie':
        // RFC 9113 8.2.3: split cookie fields are joined with "; " for HTTP/1.1.
        cookie = cookie === undefined ? value : `${cookie}; ${value}`;
        continue;
      case 'host':
        if (host !== undefined && host !== value) return { status: 400, reason: 'two different Host fields' };
        host = value;
        continue;
      case 'content-length':
        // nghttp2 refuses most bad lengths (and compares it with the DATA received); what
        // reaches the app is digits only and canonical, so both ends read the same length.
        if (length || !DIGITS.test(value)) return malformed('bad content-length');
        length = true;
        out.push(name, value.replace(/^0+(?=[0-9])/, ''));
        continue;
      default:
        if (CONNECTION_SPECIFIC.has(name)) continue;
    }
    out.push(name, value);
  }
  if (method === 'CONNECT') return { status: 400, reason: 'CONNECT is not supported' };
  // RFC 9113 8.3.1: a request to a web origin has :scheme http or https and a :path in
  // origin form ("*" for OPTIONS); anything else is malformed (8.1.1).
  if (scheme !== 'http' && scheme !== 'https') return malformed('bad :scheme');
  if (!ORIGIN_FORM.test(path) && !(path === '*' && method === 'OPTIONS')) return malformed('bad :path');
  // The app gets the request over HTTP/1.1: a method llhttp does not parse is not sent on.
  if (!KNOWN_METHODS.has(method)) return { status: 400, reason: 'unknown method' };
  // RFC 9113 8.3.1: Host and :authority must agree; :authority wins for routing.
  if (authority !== undefined && host !== undefined && authority !== host) return { status: 400, reason: 'Host differs from :authority' };
  const h = authority ?? host;
  if (h !== undefined) out.push('host', h);
  if (cookie !== undefined) out.push('cookie', cookie);
  // A body without a length goes to the app chunked (the proxy's HTTP/1.1 framing).
  if (!endStream && !length) out.push('transfer-encoding', 'chunked');
  return { method, url: path, versionMajor: 1, versionMinor: 1, raw: out, upgrade: false, keepAlive: true };
}

/** An h2 response head from the app's raw [name, value, …] fields (hop-by-hop ones already gone). */
function responseFields(status: number, headers: string[]): http2.OutgoingHttpHeaders {
  const h: http2.OutgoingHttpHeaders = { ':status': status };
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!.toLowerCase();
    if (CONNECTION_SPECIFIC.has(name)) continue;
    const value = headers[i + 1]!;
    const had = h[name];
    if (had === undefined) h[name] = value;
    else if (name === 'set-cookie') h[name] = Array.isArray(had) ? [...had, value] : [String(had), value];
    else h[name] = `${had}, ${value}`;
  }
  return h;
}

/** An h2 stream on its way through the proxy: the request's head, then the exchange's sink and source. */
export class H2Request implements Sink, Source, ExchangeOwner {
  readonly stream: http2.ServerHttp2Stream;
  /** The request as the proxy's checks and exchange take it. */
  readonly request: RequestHead;
  /** The TLS socket of the session: the peer address, SNI, "encrypted" for the gates and X-Forwarded-*. */
  readonly socket: Socket;
  readonly started: number;
  host = '';
  url = '';
  route: 'live' | 'next' | null = null;
  exchange: Exchange | null = null;
  /** The stream was reset by us (a failed upstream), not by the client. */
  resetHere = false;
  /** The whole answer has been handed to the stream. */
  complete = false;
  /** Since when the client has not taken our answer's bytes (a full stream window), for timeouts.sendMs. */
  stalledSince = -1;
  #log: AccessLog | null = null;
  #metrics: RequestCounts | null = null;
  #drainHooked = false;
  /** The request body has been fully read (or there is none). */
  #received: boolean;

  constructor(stream: http2.ServerHttp2Stream, head: RequestHead, socket: tls.TLSSocket, flags: number) {
    this.stream = stream;
    this.request = head;
    this.socket = socket;
    this.started = performance.now();
    this.#received = (flags & NGHTTP2_FLAG_END_STREAM) !== 0;
    stream.on('close', () => this.#onClose());
  }

  /** The request body is still arriving. */
  get receiving(): boolean {
    return !this.#received && !this.stream.destroyed;
  }

  /**
   * The request took longer than timeouts.requestMs to arrive (a slow upload): 408 when
   * nothing was answered yet, and the rest of the body refused (RST_STREAM NO_ERROR once the
   * answer is out, RFC 9113 8.1: see answer()); a reset when an answer had begun.
   */
  timeout(): void {
    const s = this.stream;
    const ex = this.exchange;
    if (ex !== null && !ex.finished) ex.abort();
    if (s.destroyed) return;
    if (s.headersSent) {
      this.resetHere = true;
      s.close(NGHTTP2_CANCEL);
      return;
    }
    this.answer(408, [], 'bgproxy: request timeout\n');
  }

  /** Cut at timeouts.sendMs (the client stopped reading): the answer is abandoned, its spool freed. */
  abortStalled(): void {
    this.stalledSince = -1;
    const ex = this.exchange;
    if (ex !== null && !ex.finished) ex.abort();
    this.resetHere = true;
    if (!this.stream.destroyed) this.stream.close(NGHTTP2_CANCEL);
  }

  /** The client reset the stream or the session went away (closed comes first: see 'end' in start()). */
  get gone(): boolean {
    return this.stream.destroyed || this.stream.closed;
  }

  /** Answers here (refusals, gate answers); an unread request body is read and dropped. */
  answer(status: number, headers: ReadonlyArray<readonly [string, string]>, body: string | Buffer): void {
    const s = this.stream;
    if (s.destroyed || s.headersSent) return;
    const len = typeof body === 'string' ? Buffer.byteLength(body) : body.length;
    const h: http2.OutgoingHttpHeaders = { ':status': status };
    for (const [n, v] of headers) h[n.toLowerCase()] = v;
    if (len > 0 && h['content-type'] === undefined) h['content-type'] = 'text/plain; charset=utf-8';
    h['content-length'] = len;
    h['cache-control'] = 'no-store';
    const none = this.request.method === 'HEAD' || len === 0;
    this.complete = true;
    s.respond(h, { endStream: none });
    if (!none) s.end(body);
    this.#refuseRest();
  }

  /**
   * Our answer is complete while the request body is still arriving (an early answer, a
   * refusal): RFC 9113 8.1, the rest is refused with RST_STREAM NO_ERROR, which node:http2
   * sends once the answer's last frame is out; what arrives meanwhile is dropped.
   */
  #refuseRest(): void {
    const s = this.stream;
    if (this.#received || s.destroyed || s.readableEnded) return;
    this.resetHere = true;
    s.resume();
    s.close(NGHTTP2_NO_ERROR);
  }

  /** Hands the request to `ex` (created with this as sink, source and owner) and starts it. */
  forward(ex: Exchange, log: AccessLog | null, metrics: RequestCounts | null = null): void {
    this.exchange = ex;
    this.#log = log;
    this.#metrics = metrics;
    const s = this.stream;
    ex.start();
    if (this.#received) {
      // Nothing more to read: the app has the whole request once the head is written.
      ex.onBodyEnd();
      return;
    }
    s.on('data', (c: Buffer) => ex.onBody(c));
    // node:http2 ends the readable side ('end') of a stream the client resets, with any
    // code, or whose session goes away, as it does on END_STREAM; it marks the stream
    // closed first. A body cut short must never reach the app as complete (no last chunk,
    // no buffered body sent): the exchange is abandoned, its upstream socket destroyed,
    // its temp file freed. (Our answer cannot be complete yet: it would have finished it.)
    s.on('end', () => {
      if (s.destroyed || s.closed) {
        if (!ex.finished) ex.abort();
        return;
      }
      this.#received = true;
      ex.onBodyEnd();
    });
  }

  #onClose(): void {
    const ex = this.exchange;
    if (ex !== null && !ex.finished) ex.abort();
  }

  // --- Source ---------------------------------------------------------------------------

  pauseBody(): void {
    this.stream.pause();
  }

  resumeBody(): void {
    this.stream.resume();
  }

  // --- Sink -----------------------------------------------------------------------------

  get headSent(): boolean {
    return this.stream.headersSent;
  }

  head(status: number, _message: string, headers: string[], framing: Framing): void {
    const s = this.stream;
    if (s.destroyed) return;
    try {
      s.respond(responseFields(status, headers), { endStream: framing === 'none' });
    } catch {
      // A field node:http2 will not send (a bad value from the app): the client sees a reset.
      this.resetHere = true;
      s.close(NGHTTP2_INTERNAL_ERROR);
    }
  }

  body(chunk: Buffer): boolean {
    const s = this.stream;
    if (s.destroyed || s.writableEnded) return true;
    const ok = s.write(chunk);
    if (!ok) {
      if (this.stalledSince < 0) this.stalledSince = performance.now();
      if (!this.#drainHooked) {
        this.#drainHooked = true;
        s.on('drain', () => {
          this.stalledSince = -1;
          this.exchange?.onSinkDrain();
        });
      }
    }
    return ok;
  }

  end(): void {
    this.complete = true;
    const s = this.stream;
    if (!s.destroyed && !s.writableEnded) s.end();
    // The answer is complete: a body the app did not wait for is refused.
    this.#refuseRest();
  }

  abort(): void {
    // RST_STREAM: the client sees the response cut off, never complete.
    this.resetHere = true;
    if (!this.stream.destroyed) this.stream.close(NGHTTP2_INTERNAL_ERROR);
  }

  // --- ExchangeOwner --------------------------------------------------------------------

  exchangeDone(ex: Exchange): void {
    const ms = performance.now() - this.started;
    this.#log?.write(this.request.method, this.host, this.url, ex.status, ex.target.color, ms, false, ex.id);
    this.#metrics?.request(this.route, ex.target.color, ex.status, ms / 1000);
  }
}
