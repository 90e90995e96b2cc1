// Upgrades (websockets): the request head goes to the app on a socket of its own; a 101
// answer joins the two sockets byte for byte until either side closes, anything else is
// relayed as the answer and the connection closes. The wait for the answer is bounded by
// upstreamTimeoutMs; the websocket's idle time afterwards is not.
import net from 'node:net';
import type { Logger } from '../log.js';
import {
  acquireParser,
  kOnHeaders,
  kOnHeadersComplete,
  type ParserError,
  RESPONSE,
  releaseParser,
} from './llhttp.js';

/** How long a websocket the client half-closed may wait for the app to close its side. */
const WS_HALF_OPEN_MS = 2000;

export interface TunnelOptions {
  port: number;
  /** The request head for the app (see upstreamHead). */
  head: string;
  /** Bytes the client sent after its request head. */
  rest: Buffer;
  upstreamTimeoutMs: number;
  logger: Logger;
  color: string;
  /** Header lines added to the app's answer (name, value, name, value…): a canary's Set-Cookie, HSTS. */
  addHeaders?: string[] | undefined;
}

function refuse(client: net.Socket, status: string): void {
  if (client.destroyed) return;
  if (client.bytesWritten === 0 && client.writable) {
    client.end(`HTTP/1.1 ${status}\r\nContent-Type: text/plain\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
  } else client.destroy();
}

export function tunnel(client: net.Socket, o: TunnelOptions): void {
  const upstream = net.connect({ port: o.port, host: '127.0.0.1', noDelay: true });
  const parser = acquireParser(RESPONSE, 64 * 1024);
  let answered = false;
  let seen: Buffer[] = [];
  let headers: string[] = [];
  let status = 0;
  const timer = setTimeout(() => {
    if (answered) return;
    answered = true;
    done();
    upstream.destroy();
    refuse(client, '504 Gateway Timeout');
  }, o.upstreamTimeoutMs);
  timer.unref();
  let released = false;
  const done = (): void => {
    clearTimeout(timer);
    if (released) return;
    released = true;
    releaseParser(parser, false);
  };
  parser[kOnHeaders] = (h: string[]) => {
    for (const x of h) headers.push(x);
  };
  parser[kOnHeadersComplete] = (_maj: number, _min: number, h: string[] | undefined, _m: number, _u: string, s: number): number => {
    status = s;
    if (h !== undefined) headers = h;
    return 2;
  };
  const onData = (d: Buffer): void => {
    seen.push(d);
    const ret = parser.execute(d);
    if (typeof ret !== 'number') return fail(ret);
    if (status === 0) return;
    answered = true;
    upstream.off('data', onData);
    done();
    let all = seen.length === 1 ? seen[0]! : Buffer.concat(seen);
    if (o.addHeaders !== undefined && o.addHeaders.length > 0) all = withHeaders(all, all.length - d.length + ret, o.addHeaders);
    seen = [];
    if (status !== 101) {
      // Not an upgrade: the app's answer is the answer, and the connection ends with it.
      client.write(all);
      upstream.pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
      return;
    }
    client.write(all);
    join(client, upstream);
  };
  const fail = (err: ParserError): void => {
    o.logger.debug({ err: err.code, color: o.color }, 'bad upgrade answer');
    if (answered) return;
    answered = true;
    done();
    upstream.destroy();
    refuse(client, '502 Bad Gateway');
  };
  upstream.on('data', onData);
  upstream.on('error', (err) => o.logger.debug({ err: err.message, color: o.color }, 'websocket upstream error'));
  upstream.on('close', () => {
    if (answered) return;
    answered = true;
    done();
    refuse(client, '502 Bad Gateway');
  });
  client.on('error', () => client.destroy());
  client.on('close', () => {
    if (!answered) {
      upstream.destroy();
    }
  });
  upstream.write(o.head);
  if (o.rest.length > 0) upstream.write(o.rest);
  // Bytes the client sends before the answer wait in the socket until the join.
  client.pause();
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
  return Buffer.concat([bytes.subarray(0, at), Buffer.from(lines, 'latin1'), bytes.subarray(at)]);
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
