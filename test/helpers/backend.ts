// Real HTTP backends on 127.0.0.1:0 for proxy tests; each registers its own cleanup.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';

type T = { teardown(fn: () => unknown): void };

export interface Backend {
  port: number;
  server: http.Server;
  /** Requests seen, in order. */
  seen: Array<{ method: string; url: string; headers: http.IncomingHttpHeaders }>;
  close(): Promise<void>;
}

/** Answers `name` (and x-color: name); /slow?ms=N waits; /echo returns the request headers as JSON. */
export function colorHandler(name: string): http.RequestListener {
  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const reply = (): void => {
      res.setHeader('x-color', name);
      if (url.pathname === '/echo') {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers }));
      } else res.end(`${name}\n`);
    };
    const ms = url.pathname === '/slow' ? Number(url.searchParams.get('ms') ?? 500) : 0;
    req.resume();
    req.once('end', () => (ms > 0 ? setTimeout(reply, ms) : reply()));
  };
}

export async function startBackend(t: T, handler: http.RequestListener, opts: { websocket?: boolean } = {}): Promise<Backend> {
  const seen: Backend['seen'] = [];
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    handler(req, res);
  });
  if (opts.websocket) {
    const wss = new WebSocketServer({ server });
    wss.on('connection', (ws) => ws.on('message', (m) => ws.send(`echo:${m.toString()}`)));
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  t.teardown(close);
  return { port, server, seen, close };
}

/** A websocket client through the proxy at `port` for `host`, open, closed at teardown. */
export async function openWebSocket(t: T, port: number, host: string): Promise<{ ws: WebSocket; echo(msg: string): Promise<string> }> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { headers: { host } });
  t.teardown(() => ws.terminate());
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  const echo = (msg: string): Promise<string> => {
    const reply = new Promise<string>((resolve) => ws.once('message', (m) => resolve(m.toString())));
    ws.send(msg);
    return reply;
  };
  return { ws, echo };
}

