// Byte-exact HTTP for hostile-input tests: raw client writes, and upstreams that count
// what they really receive. Everything on 127.0.0.1, everything closed in t.teardown.
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import type { Test } from 'tap';

type T = { teardown(fn: () => unknown): void };

/**
 * Sends `bytes` on a fresh connection and resolves with everything read until the server
 * closes it (or `timeoutMs`, then the socket is destroyed and what came back is returned).
 */
export function rawExchange(port: number, bytes: string | Buffer, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(bytes));
    let buf = '';
    const timer = setTimeout(() => s.destroy(), timeoutMs);
    s.on('data', (d) => (buf += d.toString('latin1')));
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(timer);
      resolve(buf);
    });
  });
}

/** The status code of the first response in a raw reply, or 0. */
export function statusOf(reply: string): number {
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(reply);
  return m ? Number(m[1]) : 0;
}

export interface CountingUpstream {
  port: number;
  /** Requests Node's strict parser saw, in order. */
  requests: Array<{ method: string; url: string; headers: http.IncomingHttpHeaders; body: string }>;
  /** Bytes that did not parse as HTTP (a smuggled or broken request). */
  parseErrors: number;
  /** Every byte received, all connections concatenated. */
  raw(): string;
}

/** An upstream that answers "ok" to each complete request and records what arrived. */
export async function startCountingUpstream(t: T): Promise<CountingUpstream> {
  const chunks: Buffer[] = [];
  const up: CountingUpstream = { port: 0, requests: [], parseErrors: 0, raw: () => Buffer.concat(chunks).toString('latin1') };
  const server = http.createServer((req, res) => {
    const body: Buffer[] = [];
    req.on('data', (c: Buffer) => body.push(c));
    req.on('end', () => {
      up.requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(body).toString('latin1') });
      res.end('ok');
    });
  });
  server.on('connection', (s: net.Socket) => s.on('data', (d: Buffer) => chunks.push(d)));
  server.on('clientError', (_err, socket: net.Socket) => {
    up.parseErrors++;
    socket.destroy();
  });
  await listen(t, server);
  up.port = (server.address() as AddressInfo).port;
  return up;
}

/** A raw TCP upstream: `onConnection` gets every accepted socket (closed at teardown). */
export async function startRawUpstream(t: T, onConnection: (socket: net.Socket) => void): Promise<{ port: number; connections: number }> {
  const info = { port: 0, connections: 0 };
  const server = net.createServer((socket) => {
    info.connections++;
    socket.on('error', () => {});
    onConnection(socket);
  });
  await listen(t, server);
  info.port = (server.address() as AddressInfo).port;
  return info;
}

/** Listens on 127.0.0.1:0 and resolves with the port once listening; closed (with its sockets) at teardown. */
export async function listen(t: T, server: net.Server): Promise<number> {
  const sockets = new Set<net.Socket>();
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  );
  return (server.address() as AddressInfo).port;
}

/** The proxy still serves a normal request to live after a hostile case. */
export async function stillServes(t: Test, port: number, expected = 'blue'): Promise<void> {
  const body = await new Promise<string>((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', headers: { host: 'live.test' }, agent: false }, (res) => {
      let b = '';
      res.on('data', (c: Buffer) => (b += c.toString()));
      res.on('end', () => resolve(b.trim()));
      res.on('error', reject);
    });
    req.setTimeout(5000, () => req.destroy(new Error('client timeout')));
    req.on('error', reject);
  });
  t.equal(body, expected, 'the proxy still serves a normal request');
}

/** An upstream connection handler that calls `respond` each time a request head has arrived. */
export function onRequestHead(respond: (s: net.Socket) => void): (s: net.Socket) => void {
  return (s) => {
    let buf = '';
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      if (buf.includes('\r\n\r\n')) {
        buf = '';
        respond(s);
      }
    });
  };
}
