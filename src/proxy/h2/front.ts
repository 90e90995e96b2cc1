// HTTP/2 on the TLS front door. A TLS connection that chose "h2" by ALPN becomes a
// node:http2 session; each of its streams is turned into one HTTP/1.1 exchange handed to
// the front server through an in-memory socket pair, so an h2 request takes the very path
// of an HTTP/1.1 one (Host routing, gates, X-Forwarded-* with proto https, hop-by-hop
// rules, in-flight accounting and drain, access log, 502/504). That costs a second parse
// per request; it keeps one request path instead of two that drift apart.
import { Duplex } from 'node:stream';
import http from 'node:http';
import http2 from 'node:http2';
import type net from 'node:net';
import type tls from 'node:tls';

export interface H2Limits {
  /** SETTINGS_MAX_CONCURRENT_STREAMS advertised to each client. */
  maxConcurrentStreams: number;
  /** SETTINGS_MAX_HEADER_LIST_SIZE: a bigger header block is refused by node:http2. */
  maxHeaderListSize: number;
}

/** RFC 9113 8.2.2: connection-specific fields are never forwarded, either way. */
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'http2-settings', 'te']);

/** One end of an in-memory connection: what is written to it is read from the other end. */
class PipeEnd extends Duplex {
  other!: PipeEnd;
  remoteAddress?: string;
  encrypted?: boolean;
  servername?: string | false | null;

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.other.push(chunk);
    cb();
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.other.push(null);
    cb();
  }

  override _read(): void {}

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (!this.other.destroyed) this.other.destroy();
    cb(err);
  }
}

function pipePair(): [PipeEnd, PipeEnd] {
  const a = new PipeEnd();
  const b = new PipeEnd();
  a.other = b;
  b.other = a;
  return [a, b];
}

export class H2Front {
  readonly sessions = new Set<http2.ServerHttp2Session>();
  #limits: H2Limits;
  readonly #accept: (socket: net.Socket) => void;
  #closing = false;

  /** `accept` takes a connection into the front server (FrontServer.accept). */
  constructor(accept: (socket: net.Socket) => void, limits: H2Limits) {
    this.#accept = accept;
    this.#limits = limits;
  }

  configure(limits: H2Limits): void {
    this.#limits = limits;
  }

  /** Serves a TLS socket whose ALPN protocol is h2. */
  serve(socket: tls.TLSSocket): void {
    if (this.#closing) {
      socket.destroy();
      return;
    }
    const session = http2.performServerHandshake(socket, {
      settings: { maxConcurrentStreams: this.#limits.maxConcurrentStreams, maxHeaderListSize: this.#limits.maxHeaderListSize, enableConnectProtocol: false },
      maxSendHeaderBlockLength: this.#limits.maxHeaderListSize,
      // node:http2 answers floods of SETTINGS/PING and rapid resets (CVE-2023-44487) by
      // closing the session once these budgets are spent.
      maxSettings: 32,
      maxSessionMemory: 10,
    });
    this.sessions.add(session);
    session.on('error', () => session.destroy());
    session.on('close', () => this.sessions.delete(session));
    session.on('stream', (stream, headers) => this.#stream(socket, stream, headers));
  }

  #stream(socket: tls.TLSSocket, stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    stream.on('error', () => stream.destroy());
    const method = headers[':method'] ?? 'GET';
    const authority = headers[':authority'] ?? headers.host;
    const path = headers[':path'];
    if (method === 'CONNECT' || !path || !authority) {
      stream.respond({ ':status': 400 }, { endStream: true });
      return;
    }
    const out: http.OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(headers)) {
      if (k.startsWith(':') || k === 'host' || CONNECTION_SPECIFIC.has(k) || v === undefined) continue;
      out[k] = v;
    }
    out.host = authority;
    const [client, server] = pipePair();
    server.remoteAddress = socket.remoteAddress;
    server.encrypted = true;
    server.servername = socket.servername;
    this.#accept(server as unknown as net.Socket);
    const req = http.request({ method, path, headers: out, createConnection: () => client as unknown as net.Socket });
    req.on('response', (res) => {
      const h: http2.OutgoingHttpHeaders = { ':status': res.statusCode ?? 502 };
      for (const [k, v] of Object.entries(res.headers)) {
        if (CONNECTION_SPECIFIC.has(k) || v === undefined) continue;
        h[k] = v;
      }
      if (stream.destroyed) {
        res.destroy();
        return;
      }
      stream.respond(h);
      res.pipe(stream);
      res.on('error', () => stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR));
    });
    req.on('error', () => {
      if (stream.destroyed) return;
      if (!stream.headersSent) stream.respond({ ':status': 502 }, { endStream: true });
      else stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    });
    stream.on('close', () => {
      if (!req.writableFinished || !stream.writableFinished) req.destroy();
    });
    stream.pipe(req);
  }

  /** Graceful stop: GOAWAY to every session; streams in flight finish (drained as front connections). */
  close(): void {
    this.#closing = true;
    for (const s of this.sessions) s.close();
  }

  /** Cuts what is left. */
  destroy(): void {
    for (const s of this.sessions) s.destroy();
  }
}
