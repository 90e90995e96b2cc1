// Upgrades (websockets): the request head (and its body, if it had one) goes to the app on a
// socket of its own. A connection becomes a tunnel only after a 101: then the client's
// further bytes go to the app and the two sockets are joined byte for byte until either side
// closes. Any other answer is parsed and relayed as an HTTP answer with Connection: close,
// and the client connection ends with it; what the client sent after its request is never
// forwarded. The wait for the answer is bounded by upstreamTimeoutMs; the websocket's idle
// time afterwards is not.
import net from 'node:net';
import type { Logger } from '../log.js';
import { headBytes, responseHeaders, unrelayable } from './headers.js';
import {
  acquireParser,
  kOnBody,
  kOnHeaders,
  kOnHeadersComplete,
  kOnMessageComplete,
  type ParserError,
  RESPONSE,
  releaseParser,
} from './llhttp.js';
import { relayedPhrase, statusLine } from './status.js';

/** How long a websocket the client half-closed may wait for the app to close its side. */
const WS_HALF_OPEN_MS = 2000;
/** How long a closed connection's leftover client bytes are read and dropped (a lingering close). */
const LINGER_MS = 2000;
const CRLF = '\r\n';

export interface TunnelOptions {
  port: number;
  /** The request head for the app (see upstreamHead). */
  head: string;
  /** The request's body, sent after the head (its Content-Length is in the head). */
  body?: Buffer | undefined;
  /** Bytes the client sent after its request: the new protocol's, sent only after a 101. */
  rest: Buffer;
  /** The request method (a HEAD's answer has no body). */
  method?: string | undefined;
  /** The client spoke HTTP/1.0: a non-101 answer is delimited by the close, not chunked. */
  http10?: boolean | undefined;
  upstreamTimeoutMs: number;
  logger: Logger;
  color: string;
  /** Header lines added to the app's answer (name, value, name, value…): a canary's Set-Cookie, HSTS. */
  addHeaders?: string[] | undefined;
}

/**
 * Ends `client` after what was written, reading and dropping what it still sends for a
 * moment: closing with unread bytes would reset the connection and could lose the answer.
 */
export function lingerEnd(client: net.Socket): void {
  if (client.destroyed) return;
  client.on('data', () => {});
  client.resume();
  client.end();
  setTimeout(() => client.destroy(), LINGER_MS).unref();
}

function refuse(client: net.Socket, status: number): void {
  if (client.destroyed) return;
  if (client.bytesWritten === 0 && client.writable) {
    client.write(`${statusLine(status)}Content-Type: text/plain\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
    lingerEnd(client);
  } else client.destroy();
}

export function tunnel(client: net.Socket, o: TunnelOptions): void {
  const upstream = net.connect({ port: o.port, host: '127.0.0.1', noDelay: true });
  const parser = acquireParser(RESPONSE, 64 * 1024);
  /** waiting: no final answer yet; relaying: a non-101 answer; joined: a tunnel; over. */
  let state: 'waiting' | 'relaying' | 'joined' | 'over' = 'waiting';
  let seen: Buffer[] = [];
  let headers: string[] = [];
  let status = 0;
  let chunked = false;
  /** The answer's head cannot be relayed (see refused()): 502 once the parser returns. */
  let refusedHead = false;
  const timer = setTimeout(() => {
    if (state !== 'waiting') return;
    state = 'over';
    release();
    upstream.destroy();
    refuse(client, 504);
  }, o.upstreamTimeoutMs);
  timer.unref();
  let released = false;
  const release = (): void => {
    clearTimeout(timer);
    if (released) return;
    released = true;
    releaseParser(parser, false);
  };
  parser[kOnHeaders] = (h: string[]) => {
    for (const x of h) headers.push(x);
  };
  parser[kOnHeadersComplete] = (_maj: number, _min: number, h: string[] | undefined, _m: number, _u: string, s: number, message: string): number => {
    const raw = h ?? headers;
    headers = [];
    // Anything after the answer (a second response) is not relayed.
    if (state !== 'waiting') return 1;
    status = s;
    if (s === 101) return 2;
    // 100 Continue, 103 Early Hints: not the answer, and no body whatever their
    // Content-Length says (RFC 9110 §15.2; 1: llhttp reads none).
    if (s >= 100 && s < 200) return 1;
    if (refused(s, raw, o.method)) {
      // Not freed here, inside its own callback: onData answers once execute returns.
      refusedHead = true;
      state = 'over';
      return 1;
    }
    state = 'relaying';
    clearTimeout(timer);
    chunked = writeAnswerHead(client, s, message, raw, o);
    return o.method === 'HEAD' ? 1 : 0;
  };
  parser[kOnBody] = (chunk: Buffer) => {
    if (state !== 'relaying') return;
    let ok: boolean;
    if (chunked) {
      client.cork();
      client.write(`${chunk.length.toString(16)}\r\n`);
      client.write(chunk);
      ok = client.write(CRLF);
      client.uncork();
    } else ok = client.write(chunk);
    if (!ok) upstream.pause();
  };
  parser[kOnMessageComplete] = () => {
    if (state !== 'relaying') return;
    state = 'over';
    if (chunked) client.write('0\r\n\r\n');
    lingerEnd(client);
    upstream.destroy();
  };
  const onData = (d: Buffer): void => {
    if (state === 'waiting') seen.push(d);
    const ret = parser.execute(d);
    if (refusedHead) {
      refusedHead = false;
      o.logger.debug({ color: o.color, status }, 'bad upgrade answer');
      release();
      upstream.destroy();
      return refuse(client, 502);
    }
    if (typeof ret !== 'number') return fail(ret);
    if (state === 'over') return release();
    if (state !== 'waiting' || status !== 101) return;
    state = 'joined';
    upstream.off('data', onData);
    release();
    let all = seen.length === 1 ? seen[0]! : Buffer.concat(seen);
    if (o.addHeaders !== undefined && o.addHeaders.length > 0) all = withHeaders(all, all.length - d.length + ret, o.addHeaders);
    seen = [];
    client.write(all);
    if (o.rest.length > 0) upstream.write(o.rest);
    join(client, upstream);
  };
  const fail = (err: ParserError): void => {
    o.logger.debug({ err: err.code, color: o.color }, 'bad upgrade answer');
    const was = state;
    state = 'over';
    release();
    upstream.destroy();
    if (was === 'waiting') refuse(client, 502);
    else client.destroy();
  };
  upstream.on('data', onData);
  upstream.on('error', (err) => o.logger.debug({ err: err.message, color: o.color }, 'websocket upstream error'));
  upstream.on('end', () => {
    // An answer delimited by the close ends here; one cut short is cut short for the client too.
    if (state === 'relaying') {
      const err = parser.finish();
      if (err !== undefined || state === 'relaying') {
        state = 'over';
        client.destroy();
      }
      release();
    }
  });
  upstream.on('close', () => {
    if (state === 'relaying') {
      state = 'over';
      client.destroy();
    }
    if (state !== 'waiting') return;
    state = 'over';
    release();
    refuse(client, 502);
  });
  client.on('drain', () => {
    if (state === 'relaying') upstream.resume();
  });
  client.on('error', () => client.destroy());
  client.on('close', () => {
    if (state === 'waiting' || state === 'relaying') {
      state = 'over';
      release();
      upstream.destroy();
    }
  });
  upstream.write(headBytes(o.head));
  if (o.body !== undefined && o.body.length > 0) upstream.write(o.body);
  // Bytes the client sends before the answer wait in the socket until the join.
  client.pause();
}

/**
 * Writes the head of a non-101 answer for the client: the app's status and end-to-end
 * headers, the gate's additions, its body framing kept (a chunked body is re-chunked as it
 * is relayed) and Connection: close. Returns whether the body is to be chunked.
 */
function writeAnswerHead(client: net.Socket, status: number, message: string, raw: string[], o: TunnelOptions): boolean {
  let te = false;
  let connection: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i]!.toLowerCase();
    if (n === 'transfer-encoding') te = true;
    else if (n === 'connection') connection = connection === undefined ? raw[i + 1] : `${connection}, ${raw[i + 1]}`;
  }
  const out = responseHeaders(status, raw, connection);
  let head = `HTTP/1.1 ${status} ${relayedPhrase(status, message)}\r\n`;
  for (let i = 0; i < out.length; i += 2) head += `${out[i]}: ${out[i + 1]}\r\n`;
  if (o.addHeaders !== undefined) for (let i = 0; i < o.addHeaders.length; i += 2) head += `${o.addHeaders[i]}: ${o.addHeaders[i + 1]}\r\n`;
  const bodyless = o.method === 'HEAD' || status === 204 || status === 304;
  const chunked = te && !bodyless && o.http10 !== true;
  if (chunked) head += 'Transfer-Encoding: chunked\r\n';
  client.write(headBytes(`${head}Connection: close\r\n\r\n`));
  return chunked;
}

/** Whether an answer's head cannot be relayed (unrelayable, as for any answer the exchange reads). */
function refused(status: number, raw: string[], method: string | undefined): boolean {
  let te: string | undefined;
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.length === 17 && raw[i]!.toLowerCase() === 'transfer-encoding') te = te === undefined ? raw[i + 1]! : `${te}, ${raw[i + 1]}`;
  return unrelayable(status, te, method === 'HEAD' || status === 204 || status === 304) !== null;
}

/**
 * `bytes` with header lines inserted at the end of the head (its first `headLength` bytes),
 * before the blank line; the app's own lines are relayed as they came.
 */
function withHeaders(bytes: Buffer, headLength: number, add: string[]): Buffer {
  // The CRLF that ends the head (llhttp refuses bare LF line ends).
  const at = headLength - 2;
  let lines = '';
  for (let i = 0; i < add.length; i += 2) lines += `${add[i]}: ${add[i + 1]}\r\n`;
  return Buffer.concat([bytes.subarray(0, at), headBytes(lines), bytes.subarray(at)]);
}

/** Joins two sockets both ways; either one closing closes the other. */
function join(client: net.Socket, upstream: net.Socket): void {
  client.pipe(upstream);
  upstream.pipe(client);
  client.resume();
  // A client that half-closes (FIN) is done; if the app never closes its side, the
  // connection would stay half-open and hold drains and shutdown until their timeouts.
  client.once('end', () => setTimeout(() => client.destroy(), WS_HALF_OPEN_MS).unref());
  client.once('close', () => upstream.destroy());
  upstream.once('close', () => client.destroy());
}
