import http from 'node:http';
import net from 'node:net';
import t from 'tap';
import WebSocket from 'ws';
import { colorHandler, openWebSocket, startBackend } from '../helpers/backend.js';
import { get, request } from '../helpers/http.js';
import { startProxy } from '../helpers/proxy.js';

t.test('routes by Host: live, next, unknown, case, port and trailing dot', async (t) => {
  const blue = await startBackend(t, colorHandler('blue'));
  const green = await startBackend(t, colorHandler('green'));
  const p = await startProxy(t, { blue, green });
  t.equal(await get(p.port, 'live.test'), 'blue');
  t.equal(await get(p.port, 'next.live.test'), 'green');
  t.equal(await get(p.port, 'LIVE.Test:8080'), 'blue');
  t.equal(await get(p.port, 'Next.Live.Test.'), 'green');
  t.equal(await get(p.port, 'next.live.test.:80'), 'green');
  t.equal(await get(p.port, 'somewhere.else'), 'blue', 'unknown hosts go to live, like the first server block');
  t.equal((await request(p.port, 'bad host')).status, 400);
});

t.test('unknownHost "reject" answers 421', async (t) => {
  const blue = await startBackend(t, colorHandler('blue'));
  const green = await startBackend(t, colorHandler('green'));
  const p = await startProxy(t, { blue, green, settings: { unknownHost: 'reject' } });
  const r = await request(p.port, 'somewhere.else');
  t.equal(r.status, 421);
  t.equal(blue.seen.length + green.seen.length, 0, 'no app saw it');
  t.equal(await get(p.port, 'live.test'), 'blue');
});

t.test('forwards the request and sets X-Forwarded-* itself', async (t) => {
  const blue = await startBackend(t, colorHandler('blue'));
  const green = await startBackend(t, colorHandler('green'));
  const p = await startProxy(t, { blue, green });
  const r = await request(p.port, 'live.test', {
    path: '/echo?q=1',
    headers: { 'x-forwarded-for': '6.6.6.6', forwarded: 'for=6.6.6.6', 'x-custom': 'kept', connection: 'keep-alive, x-drop', 'x-drop': 'gone' },
  });
  const seen = JSON.parse(r.body) as { url: string; headers: Record<string, string> };
  t.equal(seen.url, '/echo?q=1');
  t.equal(seen.headers.host, 'live.test', 'Host is passed through');
  t.equal(seen.headers['x-forwarded-for'], '127.0.0.1', 'client-sent X-Forwarded-For is replaced');
  t.equal(seen.headers['x-forwarded-proto'], 'http');
  t.equal(seen.headers['x-forwarded-host'], 'live.test');
  t.equal(seen.headers.forwarded, undefined);
  t.equal(seen.headers['x-custom'], 'kept');
  t.equal(seen.headers['x-drop'], undefined, 'Connection-listed headers do not cross');
  t.equal(r.headers['x-color'], 'blue');
});

t.test('trusted proxies get X-Forwarded-For appended', async (t) => {
  const blue = await startBackend(t, colorHandler('blue'));
  const green = await startBackend(t, colorHandler('green'));
  const p = await startProxy(t, { blue, green, settings: { trustProxy: ['127.0.0.1'] } });
  const r = await request(p.port, 'live.test', { path: '/echo', headers: { 'x-forwarded-for': '203.0.113.9', 'x-forwarded-proto': 'https' } });
  const seen = JSON.parse(r.body) as { headers: Record<string, string> };
  t.equal(seen.headers['x-forwarded-for'], '203.0.113.9, 127.0.0.1');
  t.equal(seen.headers['x-forwarded-proto'], 'https');
});

t.test('POST bodies pass, chunked and with length', async (t) => {
  const echo = await startBackend(t, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => res.end(`${req.method} ${Buffer.concat(chunks).length}`));
  });
  const green = await startBackend(t, colorHandler('green'));
  const p = await startProxy(t, { blue: echo, green });
  const body = Buffer.alloc(200_000, 'x');
  t.equal((await request(p.port, 'live.test', { method: 'POST', body })).body, 'POST 200000');
  const chunked = await request(p.port, 'live.test', { method: 'DELETE', body: 'abc', headers: { 'transfer-encoding': 'chunked' } });
  t.equal(chunked.body, 'DELETE 3', 'a chunked DELETE keeps its body framing');
});

t.test('a websocket passes through the proxy', async (t) => {
  const blue = await startBackend(t, colorHandler('blue'), { websocket: true });
  const green = await startBackend(t, colorHandler('green'));
  const p = await startProxy(t, { blue, green });
  const { echo } = await openWebSocket(t, p.port, 'live.test');
  t.equal(await echo('hi'), 'echo:hi');
  t.equal(p.bg.target('blue').websockets, 1);
});

t.test('upstream refused -> 502 naming the color, and the proxy keeps serving', async (t) => {
  const blue = await startBackend(t, colorHandler('blue'));
  const green = await startBackend(t, colorHandler('green'));
  const p = await startProxy(t, { blue, green });
  await green.close();
  const r = await request(p.port, 'next.live.test');
  t.equal(r.status, 502);
  t.match(r.body, /green/);
  const ws = new WebSocket(`ws://127.0.0.1:${p.port}/`, { headers: { host: 'next.live.test' } });
  const wsErr = await new Promise<Error>((resolve) => ws.once('error', resolve));
  t.match(wsErr.message, /502/, 'a websocket to a dead color gets 502');
  t.equal(await get(p.port, 'live.test'), 'blue');
});

t.test('upstream that never answers -> 504 after upstreamTimeoutMs', async (t) => {
  const silent = await startBackend(t, () => {});
  const green = await startBackend(t, colorHandler('green'));
  const p = await startProxy(t, { blue: silent, green, settings: { upstreamTimeoutMs: 300 } });
  const r = await request(p.port, 'live.test');
  t.equal(r.status, 504);
  t.match(r.body, /blue.*300 ms/);
});

t.test('an upstream response cut off mid-body is cut off for the client too', async (t) => {
  const cutter = await startBackend(t, (_req, res) => {
    res.writeHead(200, { 'content-length': '100' });
    res.write('only part');
    setTimeout(() => res.socket?.destroy(), 50);
  });
  const green = await startBackend(t, colorHandler('green'));
  const p = await startProxy(t, { blue: cutter, green });
  await t.rejects(request(p.port, 'live.test'), 'the client sees an aborted response, not a clean end');
  t.equal(await get(p.port, 'next.live.test'), 'green');
});

t.test('a client that aborts aborts the upstream request (no leaked sockets)', async (t) => {
  let open = 0;
  let closed = 0;
  const hanging = await startBackend(t, (req) => {
    open++;
    req.socket.once('close', () => closed++);
  });
  const green = await startBackend(t, colorHandler('green'));
  const p = await startProxy(t, { blue: hanging, green });
  const n = 20;
  await Promise.all(
    Array.from({ length: n }, () => {
      return new Promise<void>((resolve) => {
        const req = http.request({ port: p.port, host: '127.0.0.1', path: '/', headers: { host: 'live.test' }, agent: false });
        req.on('error', () => resolve());
        req.end();
        const poll = setInterval(() => {
          if (open > 0 && p.bg.target('blue').inflight > 0) {
            clearInterval(poll);
            req.destroy();
          }
        }, 5);
      });
    }),
  );
  const deadline = Date.now() + 5000;
  while ((closed < n || p.bg.target('blue').inflight > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  t.equal(open, n, 'every request reached the app');
  t.equal(closed, n, 'every upstream socket was closed after its client left');
  t.equal(p.bg.target('blue').inflight, 0);
});

t.test('raw request with two Host headers is refused', async (t) => {
  const blue = await startBackend(t, colorHandler('blue'));
  const green = await startBackend(t, colorHandler('green'));
  const p = await startProxy(t, { blue, green });
  const reply = await new Promise<string>((resolve) => {
    const s = net.connect(p.port, '127.0.0.1', () => s.write('GET / HTTP/1.1\r\nHost: live.test\r\nHost: next.live.test\r\nConnection: close\r\n\r\n'));
    let buf = '';
    s.on('data', (d) => (buf += d.toString()));
    s.on('close', () => resolve(buf));
    s.on('error', () => resolve(buf));
  });
  t.match(reply, /^HTTP\/1\.1 400/);
  t.equal(blue.seen.length + green.seen.length, 0);
});

t.test('a websocket the client half-closes is closed even if the app never closes its side', async (t) => {
  const blue = await startBackend(t, colorHandler('blue'));
  // An app that answers the upgrade and then ignores the client's FIN.
  let appEnded = false;
  blue.server.on('upgrade', (_req, socket: net.Socket) => {
    socket.once('end', () => (appEnded = true));
    t.teardown(() => socket.destroy());
    socket.on('error', () => {});
    socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
  });
  const green = await startBackend(t, colorHandler('green'));
  const p = await startProxy(t, { blue, green });
  const client = net.connect(p.port, '127.0.0.1');
  t.teardown(() => client.destroy());
  client.write('GET /ws HTTP/1.1\r\nHost: live.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
  await new Promise<void>((resolve) => client.once('data', () => resolve()));
  t.equal(p.bg.target('blue').websockets, 1);
  client.end();
  const until = Date.now() + 8000;
  while (p.bg.target('blue').websockets > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  t.equal(p.bg.target('blue').websockets, 0, 'not left half-open');
  while (!appEnded && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  t.ok(appEnded, "the proxy's connection to the app is closed too");
});
