// HTTP/2 on the TLS listener: ALPN h2 next to http/1.1 on one port, h2 streams routed and
// forwarded like HTTP/1.1 requests (Host from :authority, X-Forwarded-Proto https, no
// connection-specific fields), request bodies without a length, tls.http2 false, limits.
import { execFile } from 'node:child_process';
import type http from 'node:http';
import http2 from 'node:http2';
import t from 'tap';
import { colorHandler, startBackend } from '../helpers/backend.js';
import { startProxy } from '../helpers/proxy.js';
import { httpsRequest, issueCert, makeCa } from '../helpers/tls.js';

type T = { teardown(fn: () => unknown): void };
const tlsPort = (p: { tlsListen: string | null }): number => Number(p.tlsListen!.split(':').pop());

async function setup(t: T, extra: Record<string, unknown> = {}, blueHandler: http.RequestListener = colorHandler('blue')) {
  const ca = makeCa(t);
  const cert = issueCert(ca, 'live', ['live.test', '*.live.test']);
  const blue = await startBackend(t, blueHandler);
  const green = await startBackend(t, colorHandler('green'));
  const p = await startProxy(t, { blue, green, settings: { tls: { listen: '127.0.0.1:0', certificates: [cert], ...extra } } });
  return { ca, p, port: tlsPort(p) };
}

function connect(t: T, port: number, ca: Buffer, host = 'live.test'): http2.ClientHttp2Session {
  const s = http2.connect(`https://127.0.0.1:${port}`, { ca, servername: host });
  s.on('error', () => {});
  t.teardown(() => s.destroy());
  return s;
}

interface H2Result {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: string;
}

function h2Request(s: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: string[]): Promise<H2Result> {
  return new Promise((resolve, reject) => {
    const req = s.request(headers, { endStream: body === undefined });
    let res: http2.IncomingHttpHeaders = {};
    const chunks: Buffer[] = [];
    req.on('response', (h) => {
      res = h;
    });
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve({ status: Number(res[':status']), headers: res, body: Buffer.concat(chunks).toString() }));
    req.on('error', reject);
    if (body) {
      for (const b of body) req.write(b);
      req.end();
    }
  });
}

t.test('h2 by ALPN: routing by :authority, X-Forwarded-Proto https, HTTP/1.1 on the same port', async (t) => {
  const { ca, port } = await setup(t);
  const s = connect(t, port, ca.pem);
  const live = await h2Request(s, { ':path': '/echo', ':authority': 'live.test', 'x-test': 'a' });
  t.equal(live.status, 200);
  const echo = JSON.parse(live.body) as { headers: Record<string, string> };
  t.equal(echo.headers['x-forwarded-proto'], 'https');
  t.equal(echo.headers['x-forwarded-host'], 'live.test');
  t.equal(echo.headers.host, 'live.test', ':authority became Host');
  t.equal(echo.headers['x-test'], 'a');
  t.notOk(Object.keys(live.headers).some((k) => k === 'connection' || k === 'keep-alive' || k === 'transfer-encoding'), 'no connection-specific fields back');
  // A host on another session: the SNI/Host gate answers 421 to one that disagrees.
  const n = connect(t, port, ca.pem, 'next.live.test');
  const all = await Promise.all(
    Array.from({ length: 20 }, (_, i) => (i % 2 ? h2Request(n, { ':path': `/n${i}`, ':authority': 'next.live.test' }) : h2Request(s, { ':path': `/n${i}`, ':authority': 'live.test' }))),
  );
  t.same(
    all.map((r) => r.body),
    Array.from({ length: 20 }, (_, i) => (i % 2 ? 'green\n' : 'blue\n')),
    '20 concurrent streams, each to its host color',
  );
  const h1 = await httpsRequest({ port, host: 'live.test', ca: ca.pem });
  t.equal(h1.alpn, 'http/1.1');
  t.equal(h1.body, 'blue\n');
});

t.test('curl --http2 gets h2 and the live app; --http1.1 on the same port gets HTTP/1.1', async (t) => {
  const { ca, port } = await setup(t);
  const curl = (flag: string): Promise<string> =>
    new Promise((resolve, reject) =>
      execFile(
        'curl',
        ['-sS', flag, '--cacert', ca.cert, '--resolve', `live.test:${port}:127.0.0.1`, '-w', '%{http_version}', `https://live.test:${port}/`],
        { timeout: 20_000 },
        (err, out) => (err ? reject(err) : resolve(out)),
      ),
    );
  t.equal(await curl('--http2'), 'blue\n2', 'HTTP/2');
  t.equal(await curl('--http1.1'), 'blue\n1.1', 'HTTP/1.1');
});

t.test('an h2 request body without a length reaches the app whole', async (t) => {
  const got: { body: string; te?: string; len?: string }[] = [];
  const { ca, port } = await setup(t, {}, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      got.push({ body: Buffer.concat(chunks).toString(), te: req.headers['transfer-encoding'], len: req.headers['content-length'] });
      res.end('ok');
    });
  });
  const s = connect(t, port, ca.pem);
  const parts = Array.from({ length: 50 }, (_, i) => `${i}:${'x'.repeat(1000)}\n`);
  const r = await h2Request(s, { ':method': 'POST', ':path': '/echo', ':authority': 'live.test' }, parts);
  t.equal(r.status, 200);
  t.equal(r.body, 'ok');
  t.equal(got.length, 1);
  t.equal(got[0]!.body, parts.join(''), 'the body arrived whole');
  t.ok(got[0]!.te === 'chunked' || got[0]!.len !== undefined, 'framed with chunked or a Content-Length');
});

t.test('flow control upstream: an app that does not read holds the client back, then gets it all', async (t) => {
  const total = 16 * 1024 * 1024;
  let reading: (() => void) | null = null;
  let received = 0;
  const { ca, port } = await setup(t, {}, (req, res) => {
    req.pause();
    reading = () => {
      req.on('data', (c: Buffer) => (received += c.length));
      req.on('end', () => res.end(String(received)));
      req.resume();
    };
  });
  const s = connect(t, port, ca.pem);
  const req = s.request({ ':method': 'POST', ':path': '/up', ':authority': 'live.test' });
  let sent = 0;
  let blocked = false;
  const chunk = Buffer.alloc(64 * 1024, 'u');
  const write = (): void => {
    while (sent < total) {
      sent += chunk.length;
      if (sent >= total) return void req.end(chunk);
      if (!req.write(chunk)) {
        blocked = true;
        return void req.once('drain', write);
      }
    }
  };
  write();
  while (reading === null) await new Promise((r) => setTimeout(r, 20));
  let last = -1;
  while (sent !== last) {
    last = sent;
    await new Promise((r) => setTimeout(r, 500));
  }
  t.ok(blocked && sent < total / 2, `the client could send only ${sent} of ${total} bytes to an app that reads nothing`);
  const body = new Promise<string>((resolve) => {
    let b = '';
    req.on('data', (c: Buffer) => (b += c));
    req.on('end', () => resolve(b));
  });
  (reading as () => void)();
  t.equal(await body, String(total), 'the app got the whole body once it read');
});

t.test('graceful stop: GOAWAY, a stream in flight finishes, new connections are refused', async (t) => {
  const { ca, p, port } = await setup(t);
  const s = connect(t, port, ca.pem);
  const slow = h2Request(s, { ':path': '/slow?ms=800', ':authority': 'live.test' });
  await new Promise((r) => setTimeout(r, 200));
  const goaway = new Promise((r) => s.once('goaway', r));
  const stopped = p.stop();
  await goaway;
  t.pass('the session got GOAWAY');
  const r = await slow;
  t.equal(r.body, 'blue\n', 'the stream in flight finished');
  await stopped;
  const late = await httpsRequest({ port, host: 'live.test', ca: ca.pem }).catch((e: NodeJS.ErrnoException) => e);
  t.ok(late instanceof Error, 'the listener is closed');
});

t.test('gates over h2: maintenance answers 503 with Retry-After; pause holds a stream, resume lets it through', async (t) => {
  const { ca, p, port } = await setup(t);
  const s = connect(t, port, ca.pem);
  await p.bg.maintenance(true, 120);
  const m = await h2Request(s, { ':path': '/', ':authority': 'live.test' });
  t.equal(m.status, 503);
  t.equal(m.headers['retry-after'], '120');
  const n = connect(t, port, ca.pem, 'next.live.test');
  t.equal((await h2Request(n, { ':path': '/', ':authority': 'next.live.test' })).body, 'green\n', 'next still works');
  await p.bg.maintenance(false);
  await p.bg.pause(30_000);
  let settled = false;
  const held = h2Request(s, { ':path': '/', ':authority': 'live.test' }).finally(() => {
    settled = true;
  });
  await new Promise((r) => setTimeout(r, 300));
  t.notOk(settled, 'the stream is held while paused');
  p.bg.resume();
  t.equal((await held).body, 'blue\n', 'and answered after resume');
});

t.test('tls.http2 false: ALPN offers http/1.1 only', async (t) => {
  const { ca, port } = await setup(t, { http2: false });
  const s = http2.connect(`https://127.0.0.1:${port}`, { ca: ca.pem, servername: 'live.test' });
  t.teardown(() => s.destroy());
  const err = await new Promise<Error>((resolve) => s.on('error', resolve));
  t.ok(err, 'an h2-only client is refused');
  const h1 = await httpsRequest({ port, host: 'live.test', ca: ca.pem });
  t.equal(h1.body, 'blue\n');
});

t.test('limits: max concurrent streams advertised; an oversized header block is refused, the session serves on', async (t) => {
  const { ca, port } = await setup(t, { h2: { maxConcurrentStreams: 7, maxHeaderListSize: 4096 } });
  const s = connect(t, port, ca.pem);
  await new Promise<void>((resolve) => s.once('remoteSettings', () => resolve()));
  t.equal(s.remoteSettings.maxConcurrentStreams, 7);
  t.equal(s.remoteSettings.maxHeaderListSize, 4096);
  const big = await h2Request(s, { ':path': '/', ':authority': 'live.test', 'x-big': 'y'.repeat(8000) }).catch((e: Error) => e);
  t.ok(big instanceof Error || big.status === 431, 'the big header block is refused');
  const other = connect(t, port, ca.pem);
  const ok = await h2Request(other, { ':path': '/', ':authority': 'live.test' });
  t.equal(ok.body, 'blue\n', 'another client is unaffected');
});
