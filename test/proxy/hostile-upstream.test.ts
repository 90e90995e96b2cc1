// Upstream faults, byte for byte from a raw TCP upstream: refused, silent, reset mid-body,
// garbage or oversized headers. Each gets a fixed answer (or a cut connection) and the
// proxy keeps serving.

import http from 'node:http';
import type net from 'node:net';
import t, { type Test } from 'tap';
import { colorHandler, startBackend } from '../helpers/backend.js';
import { request } from '../helpers/http.js';
import { startProxy } from '../helpers/proxy.js';
import { onRequestHead, rawExchange, startRawUpstream, statusOf, stillServes } from '../helpers/raw.js';

/** Blue answers normally; green is the faulty upstream under test (reached via next.live.test). */
async function withFaultyGreen(t: Test, onConnection: (s: net.Socket) => void, settings: Record<string, unknown> = {}) {
  const blue = await startBackend(t, colorHandler('blue'));
  const green = await startRawUpstream(t, onConnection);
  const p = await startProxy(t, { blue, green, settings });
  return { p, green };
}

function noInternals(t: Test, body: string): void {
  t.notMatch(body, /ECONN|127\.0\.0\.1|:\d{2,5}\b|at .*\(|Error/, 'no internals in the body');
}

t.test('refused -> 502 with a fixed body', async (t) => {
  const blue = await startBackend(t, colorHandler('blue'));
  const green = await startBackend(t, colorHandler('green'));
  const p = await startProxy(t, { blue, green });
  await green.close();
  const r = await request(p.port, 'next.live.test');
  t.equal(r.status, 502);
  t.equal(r.body, 'bgproxy: the green app is not accepting connections\n');
  noInternals(t, r.body);
  await stillServes(t, p.port);
});

t.test('accepts and never answers -> 504 after upstreamTimeoutMs', async (t) => {
  const { p } = await withFaultyGreen(t, () => {}, { upstreamTimeoutMs: 300 });
  const started = performance.now();
  const r = await request(p.port, 'next.live.test');
  const ms = performance.now() - started;
  t.equal(r.status, 504);
  t.ok(ms >= 280 && ms < 3000, `after about 300 ms (${Math.round(ms)})`);
  noInternals(t, r.body.replace('300 ms', ''));
  await stillServes(t, p.port);
});

t.test('answers headers then goes silent mid-body -> client connection cut at upstreamTimeoutMs', async (t) => {
  const { p } = await withFaultyGreen(
    t,
    onRequestHead((s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart')),
    { upstreamTimeoutMs: 300 },
  );
  await t.rejects(request(p.port, 'next.live.test'), 'the client sees a cut response');
  await stillServes(t, p.port);
});

t.test('resets mid-body -> the client connection is aborted, never ended cleanly', async (t) => {
  for (const framing of ['Content-Length: 100', 'Transfer-Encoding: chunked']) {
    const { p } = await withFaultyGreen(
      t,
      onRequestHead((s) => {
        s.write(`HTTP/1.1 200 OK\r\n${framing}\r\n\r\n${framing.startsWith('T') ? '4\r\npart\r\n' : 'part'}`, () => s.resetAndDestroy());
      }),
    );
    await t.rejects(request(p.port, 'next.live.test'), `${framing}: aborted`);
    const raw = await rawExchange(p.port, 'GET / HTTP/1.1\r\nHost: next.live.test\r\n\r\n');
    t.equal(statusOf(raw), 200, 'headers had been forwarded');
    if (framing.startsWith('T')) t.notOk(raw.endsWith('0\r\n\r\n'), 'no terminating chunk');
    await stillServes(t, p.port);
  }
});

t.test('closes cleanly before the Content-Length is reached -> the client is cut too', async (t) => {
  const { p } = await withFaultyGreen(
    t,
    onRequestHead((s) => s.end('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart')),
  );
  await t.rejects(request(p.port, 'next.live.test'));
  await stillServes(t, p.port);
});

const BAD_RESPONSES: Array<[string, string]> = [
  ['garbage', 'garbage\r\n\r\n'],
  ['binary', '\x00\x01\x02\xff\r\n\r\n'],
  ['an HTTP/0.9 body', '<html>hello</html>'],
  ['a bad status line', 'HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n'],
  ['oversized headers', `HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(40_000)}\r\nContent-Length: 0\r\n\r\n`],
  ['a control character in a header value', 'HTTP/1.1 200 OK\r\nX-Bad: a\x01b\r\nContent-Length: 0\r\n\r\n'],
  ['a space in a header name', 'HTTP/1.1 200 OK\r\nX Bad: a\r\nContent-Length: 0\r\n\r\n'],
  ['Content-Length with Transfer-Encoding', 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n'],
  ['two different Content-Lengths', 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd'],
  ['obs-fold', 'HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n'],
  ['bare LF', 'HTTP/1.1 200 OK\nX-A: a\nContent-Length: 0\n\n'],
  ['a 101 to a request that asked for no upgrade', 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\nother-protocol'],
];

t.test('bad response heads -> 502, the process alive', async (t) => {
  for (const [name, bytes] of BAD_RESPONSES) {
    const { p } = await withFaultyGreen(t, onRequestHead((s) => s.end(Buffer.from(bytes, 'latin1'))));
    const r = await request(p.port, 'next.live.test').catch((e: Error) => ({ status: -1, body: e.message }));
    t.equal(r.status, 502, `${name} -> 502`);
    noInternals(t, r.body);
    await stillServes(t, p.port);
  }
});

t.test('a 101 to a plain request, the app keeping its socket open -> 502 at once, not a hang', async (t) => {
  const { p } = await withFaultyGreen(t, onRequestHead((s) => s.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n')));
  const r = await request(p.port, 'next.live.test');
  t.equal(r.status, 502);
  noInternals(t, r.body);
  await stillServes(t, p.port);
});

t.test('hop-by-hop response headers do not cross; upstream Connection: close keeps the client connection', async (t) => {
  const { p, green } = await withFaultyGreen(
    t,
    onRequestHead((s) =>
      s.write(
        'HTTP/1.1 200 OK\r\nConnection: close, X-Secret\r\nX-Secret: 1\r\nKeep-Alive: timeout=1\r\nProxy-Authenticate: Basic\r\nTrailer: X-Sum\r\nUpgrade: h2c\r\nX-Kept: yes\r\nContent-Length: 2\r\n\r\nok',
        () => s.end(),
      ),
    ),
  );
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  const a = await request(p.port, 'next.live.test', { agent });
  t.equal(a.status, 200);
  t.equal(a.body, 'ok');
  t.equal(a.headers['x-kept'], 'yes');
  for (const h of ['x-secret', 'proxy-authenticate', 'trailer', 'upgrade']) t.equal(a.headers[h], undefined, `${h} dropped`);
  t.not(a.headers['keep-alive'], 'timeout=1', "the app's Keep-Alive does not cross (the proxy's own may)");
  t.not(a.headers.connection, 'close', 'the client connection stays open');
  const b = await request(p.port, 'next.live.test', { agent });
  t.equal(b.body, 'ok');
  t.equal(green.connections, 2, 'a fresh upstream connection after the upstream closed');
  await stillServes(t, p.port);
});
