// Slow clients: slowloris header dribblers and slow bodies are cut at the configured
// timeouts (not at Node's 30 s check interval), and a normal request stays fast meanwhile.
import net from 'node:net';
import t from 'tap';
import { startBackend } from '../helpers/backend.js';
import { request } from '../helpers/http.js';
import { until } from '../helpers/measure.js';
import { startProxy } from '../helpers/proxy.js';
import { startCountingUpstream, stillServes } from '../helpers/raw.js';

t.test('200 slowloris sockets are closed within the header timeout', async (t) => {
  const blue = await startBackend(t, (_req, res) => res.end('blue\n'));
  const green = await startCountingUpstream(t);
  const headersMs = 1000;
  const p = await startProxy(t, { blue, green, settings: { timeouts: { headersMs, requestMs: 5000 } } });
  const sockets: net.Socket[] = [];
  const closedAt: number[] = [];
  const dribble = setInterval(() => {
    for (const s of sockets) if (!s.destroyed) s.write('X-a: b\r\n');
  }, 100);
  t.teardown(() => {
    clearInterval(dribble);
    for (const s of sockets) s.destroy();
  });
  const started = Date.now();
  await Promise.all(
    Array.from(
      { length: 200 },
      () =>
        new Promise<void>((resolve) => {
          const s = net.connect(p.port, '127.0.0.1', () => {
            s.write('GET / HTTP/1.1\r\nHost: live.test\r\n');
            resolve();
          });
          s.on('error', () => {});
          s.on('close', () => closedAt.push(Date.now() - started));
          s.resume();
          sockets.push(s);
        }),
    ),
  );
  const t0 = performance.now();
  const r = await request(p.port, 'live.test');
  const normalMs = performance.now() - t0;
  t.equal(r.body, 'blue\n');
  t.ok(normalMs < 2000, `a normal request stays fast meanwhile (${Math.round(normalMs)} ms)`);
  await until(() => closedAt.length === 200, 15_000, 'every slowloris socket to close');
  const last = Math.max(...closedAt);
  t.comment(`200 slowloris sockets closed after ${Math.min(...closedAt)}..${last} ms (headersMs ${headersMs})`);
  t.ok(last < headersMs + 2500, `all closed within the header timeout plus a check interval (${last} ms)`);
  t.equal(green.requests.length, 0);
  await stillServes(t, p.port);
});

t.test('a slow body is cut at the request timeout and its upstream request aborted', async (t) => {
  let upstreamClosed = false;
  let upstreamComplete = false;
  let upstreamStarted = false;
  const blue = await startBackend(t, (req, res) => {
    if (req.url !== '/upload') return res.end('blue\n');
    upstreamStarted = true;
    req.resume();
    req.on('end', () => {
      upstreamComplete = true;
      res.end('done');
    });
    req.socket.once('close', () => (upstreamClosed = true));
  });
  const green = await startCountingUpstream(t);
  const requestMs = 1500;
  // A streamed upload (buffering.requests off) reaches the app before it is whole; a buffered
  // one never does (buffering-requests.test.ts).
  const p = await startProxy(t, { blue, green, settings: { timeouts: { headersMs: 1000, requestMs }, buffering: { requests: false } } });
  const started = Date.now();
  const s = net.connect(p.port, '127.0.0.1', () => {
    s.write('POST /upload HTTP/1.1\r\nHost: live.test\r\nContent-Length: 100000\r\n\r\n');
  });
  s.on('error', () => {});
  let reply = '';
  s.on('data', (d) => (reply += d.toString()));
  const drip = setInterval(() => s.writable && s.write('x'), 100);
  t.teardown(() => {
    clearInterval(drip);
    s.destroy();
  });
  await new Promise<void>((resolve) => s.once('close', () => resolve()));
  clearInterval(drip);
  const closedMs = Date.now() - started;
  t.comment(`slow body cut after ${closedMs} ms (requestMs ${requestMs}); client saw ${JSON.stringify(reply.split('\r\n')[0] ?? '')}`);
  t.ok(closedMs >= requestMs - 100 && closedMs < requestMs + 2500, `closed at the request timeout (${closedMs} ms)`);
  t.ok(upstreamStarted, 'the request had reached the app');
  await until(() => upstreamClosed, 5000, 'the upstream request to be aborted');
  t.notOk(upstreamComplete, 'the app never saw a complete body');
  t.equal(p.bg.target('blue').inflight, 0, 'nothing left in flight');
  await stillServes(t, p.port);
});

t.test('an idle keep-alive connection is closed at keepAliveMs', async (t) => {
  const blue = await startBackend(t, (_req, res) => res.end('blue\n'));
  const green = await startCountingUpstream(t);
  const p = await startProxy(t, { blue, green, settings: { timeouts: { headersMs: 500, requestMs: 1000, keepAliveMs: 500 } } });
  const s = net.connect(p.port, '127.0.0.1', () => s.write('GET / HTTP/1.1\r\nHost: live.test\r\n\r\n'));
  s.on('error', () => {});
  s.resume();
  const started = Date.now();
  await new Promise<void>((resolve) => s.once('close', () => resolve()));
  const ms = Date.now() - started;
  t.ok(ms < 3000, `closed after ${ms} ms`);
  await stillServes(t, p.port);
});

t.test('a request already waiting in the socket when a late sweep finds the connection idle is answered, not reset', async (t) => {
  const blue = await startBackend(t, (_req, res) => res.end('blue\n'));
  const green = await startCountingUpstream(t);
  const p = await startProxy(t, { blue, green, settings: { timeouts: { keepAliveMs: 300 } } });
  const s = net.connect(p.port, '127.0.0.1');
  s.on('error', () => {});
  let got = '';
  s.on('data', (d: Buffer) => (got += d.toString()));
  const answers = (n: number): Promise<void> => until(() => got.split('HTTP/1.1 200').length - 1 >= n, 5000, `${n} answers`);
  await new Promise<void>((resolve) => s.once('connect', () => resolve()));
  s.write('GET / HTTP/1.1\r\nHost: live.test\r\n\r\n');
  await answers(1);
  // The next request reaches the kernel at once, then this process (the proxy's too) is
  // stuck past keepAliveMs, as a busy machine stalls a loop: the sweep timer runs first.
  s.write('GET / HTTP/1.1\r\nHost: live.test\r\n\r\n');
  const until450 = performance.now() + 450;
  while (performance.now() < until450);
  await answers(2);
  t.equal(got.split('HTTP/1.1 200').length - 1, 2, 'the waiting request was answered');
  s.destroy();
});
