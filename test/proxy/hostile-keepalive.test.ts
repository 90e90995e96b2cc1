// The keep-alive race: an app that closes idle connections after 1 s, requests spaced
// around 1 s so some are written as the app closes the pooled socket. Bounded to ~13 s
// (the issue asks for a minute; the race window is the same every second, so 6 s per
// variant of bursts of 4 gives ~24 requests at the boundary).
// bgproxy drops pooled sockets after timeouts.upstreamIdleMs (500 ms by default), below the
// app's 1 s. The race itself (a request written as the app closes) is then made exact: an
// app that resets every connection when its second request arrives.
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

const variants = [
  { hint: false, name: 'not announced' },
  { hint: true, name: 'announced' },
];
for (const v of variants) {
  t.test(`an app with a 1 s keepAliveTimeout (${v.name}), requests spaced around 1 s`, async (t) => {
    const app = await shortKeepAliveApp(t, v.hint);
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

t.test('a request written to a pooled connection the app resets: retried once if idempotent, never replayed if not', async (t) => {
  // Every connection answers its first request and is reset (RST, nothing answered) when
  // a second request arrives on it: the keep-alive race with the timing taken out.
  const seen: string[] = [];
  let connections = 0;
  const server = http.createServer((req, res) => {
    const socket = req.socket as Socket & { served?: number };
    socket.served = (socket.served ?? 0) + 1;
    if (socket.served > 1) {
      seen.push(`reset ${req.method}`);
      socket.resetAndDestroy();
      return;
    }
    req.resume();
    req.on('end', () => {
      seen.push(`answered ${req.method}`);
      res.end(`blue ${req.method}\n`);
    });
  });
  server.keepAliveTimeout = 30_000;
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  const green = await startBackend(t, colorHandler('green'));
  const p = await startProxy(t, { blue: { port: (server.address() as AddressInfo).port }, green });

  t.equal((await request(p.port, 'live.test')).status, 200, 'first GET opens a pooled connection');
  const again = await request(p.port, 'live.test');
  t.equal(again.status, 200, 'a GET on the reset pooled connection is retried on a fresh one');
  t.same(seen, ['answered GET', 'reset GET', 'answered GET']);
  t.equal(connections, 2);

  seen.length = 0;
  const post = await request(p.port, 'live.test', { method: 'POST', body: 'order=1' });
  t.equal(post.status, 502, 'a POST that may have reached the app is answered 502, not sent twice');
  t.same(seen, ['reset POST'], 'the app saw the POST once');
  await stillServes(t, p.port, 'blue GET');
});
