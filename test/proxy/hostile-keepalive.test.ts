// The keep-alive race: an app that closes idle connections after 1 s, requests spaced
// around 1 s so some are written as the app closes the pooled socket. Bounded to ~13 s
// (the issue asks for a minute; the race window is the same every second, so 6 s per
// variant of bursts of 4 gives ~24 requests at the boundary).
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import t from 'tap';
import { colorHandler, startBackend } from '../helpers/backend.js';
import { request } from '../helpers/http.js';
import { startProxy } from '../helpers/proxy.js';
import { stillServes } from '../helpers/raw.js';

/** A Node app with keepAliveTimeout 1 s; `hint` false hides Keep-Alive: timeout=1 (as gunicorn does). */
async function shortKeepAliveApp(t: Tap, hint: boolean): Promise<{ port: number; connections: () => number }> {
  let connections = 0;
  const server = http.createServer((req, res) => {
    const body: Buffer[] = [];
    req.on('data', (c: Buffer) => body.push(c));
    req.on('end', () => {
      // Setting Connection ourselves stops Node from adding its Keep-Alive hint.
      if (!hint) res.setHeader('connection', 'keep-alive');
      res.end(`blue ${req.method} ${Buffer.concat(body).length}\n`);
    });
  });
  server.keepAliveTimeout = 1000;
  // Node 20 closes idle sockets 1 s after keepAliveTimeout; without the hint, close at
  // exactly 1 s of idleness instead, as gunicorn and most apps do.
  if (!hint) server.keepAliveTimeout = 0;
  const idle = new Map<Socket, NodeJS.Timeout>();
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const socket = req.socket;
    clearTimeout(idle.get(socket));
    if (!hint) res.once('finish', () => idle.set(socket, setTimeout(() => socket.destroy(), 1000)));
  });
  server.on('connection', (socket: Socket) => {
    connections++;
    socket.on('close', () => {
      clearTimeout(idle.get(socket));
      idle.delete(socket);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  return { port: (server.address() as AddressInfo).port, connections: () => connections };
}
type Tap = { teardown(fn: () => unknown): void };

for (const hint of [false, true]) {
  t.test(`an app with a 1 s keepAliveTimeout (${hint ? 'announced' : 'not announced'}), requests spaced around 1 s`, async (t) => {
    const app = await shortKeepAliveApp(t, hint);
    const green = await startBackend(t, colorHandler('green'));
    const p = await startProxy(t, { blue: app, green });
    const errors: string[] = [];
    let ok = 0;
    const one = async (post: boolean): Promise<void> => {
      try {
        const r = await request(p.port, 'live.test', post ? { method: 'POST', body: 'x'.repeat(100) } : {});
        if (r.status === 200) ok++;
        else errors.push(`${r.status} ${r.body.trim()}`);
      } catch (err) {
        errors.push((err as Error).message);
      }
    };
    // Bursts of 4 (4 pooled sockets), then a pause sweeping 900..1100 ms, so every pooled
    // socket sits idle for about the app's timeout before it is reused.
    const until = Date.now() + 6_000;
    for (let i = 0; Date.now() < until; i++) {
      await Promise.all([one(false), one(true), one(false), one(i % 2 === 0)]);
      await new Promise((r) => setTimeout(r, 900 + ((i * 41) % 200)));
    }
    t.comment(`${ok} requests, ${errors.length} errors, ${app.connections()} upstream connections`);
    t.same(errors, [], 'zero client-visible errors');
    t.ok(ok >= 16, `enough requests (${ok})`);
    await stillServes(t, p.port, 'blue GET 0');
  });
}
