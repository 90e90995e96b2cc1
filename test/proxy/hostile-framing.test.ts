// Hostile framing: Host, Content-Length, Transfer-Encoding, line endings, smuggling.
// Every case is written byte for byte on a raw socket; the upstream counts what it got.
import t, { type Test } from 'tap';
import { colorHandler, startBackend } from '../helpers/backend.js';
import { request } from '../helpers/http.js';
import { startProxy } from '../helpers/proxy.js';
import { rawExchange, startCountingUpstream, statusOf, stillServes } from '../helpers/raw.js';

// Every process warning from the first request on: Node prints a deprecation once per
// process, so a listener added later would miss one an earlier test triggered.
const warnings: Error[] = [];
process.on('warning', (w) => warnings.push(w));

async function setup(t: Test, settings: Record<string, unknown> = {}) {
  const blue = await startCountingUpstream(t);
  const green = await startBackend(t, colorHandler('green'));
  const p = await startProxy(t, { blue, green, settings });
  return { blue, green, p };
}

/** A refusal with no upstream contact and the proxy serving afterwards. */
async function refused(t: Test, bytes: string, status = 400, settings: Record<string, unknown> = {}): Promise<string> {
  const { blue, p } = await setup(t, settings);
  const reply = await rawExchange(p.port, bytes);
  t.equal(statusOf(reply), status, `answered ${status}`);
  t.equal(blue.requests.length + blue.parseErrors, 0, 'no upstream contact');
  t.equal(blue.raw(), '', 'no byte reached the upstream');
  await stillServesCounting(t, p.port);
  return reply;
}

async function stillServesCounting(t: Test, port: number): Promise<void> {
  const r = await request(port, 'live.test');
  t.equal(r.body, 'ok', 'the proxy still serves a normal request');
}

t.test('Host', async (t) => {
  t.test('missing on HTTP/1.1 -> 400', (t) => refused(t, 'GET / HTTP/1.1\r\nConnection: close\r\n\r\n').then(() => t.end()));
  t.test('two Host headers -> 400', (t) =>
    refused(t, 'GET / HTTP/1.1\r\nHost: live.test\r\nHost: next.live.test\r\nConnection: close\r\n\r\n').then(() => t.end()));
  t.test('empty Host on HTTP/1.1 -> 400', (t) => refused(t, 'GET / HTTP/1.1\r\nHost: \r\nConnection: close\r\n\r\n').then(() => t.end()));
  for (const bad of ['live test', 'user@live.test', 'live.test/path', 'live.test:99999', 'live.test:8o', 'live.test:', '<script>x</script>', 'live..test', '[::1']) {
    t.test(`malformed Host ${JSON.stringify(bad)} -> 400, not reflected`, async (t) => {
      const reply = await refused(t, `GET / HTTP/1.1\r\nHost: ${bad}\r\nConnection: close\r\n\r\n`);
      t.notOk(reply.includes(bad), 'the value is not reflected');
    });
  }
  t.test('case, port and trailing dot variants take the same route', async (t) => {
    const { blue, p } = await setup(t);
    for (const h of ['live.test', 'LIVE.TEST', 'Live.Test:80', 'live.test.', 'live.test.:8080']) {
      t.equal(statusOf(await rawExchange(p.port, `GET / HTTP/1.1\r\nHost: ${h}\r\nConnection: close\r\n\r\n`)), 200, h);
    }
    t.equal(blue.requests.length, 5, 'all went to live');
  });
  t.test('HTTP/1.0 without Host routes as an unknown host (live)', async (t) => {
    const { blue, p } = await setup(t);
    const reply = await rawExchange(p.port, 'GET /old HTTP/1.0\r\n\r\n');
    t.equal(statusOf(reply), 200);
    t.equal(blue.requests.length, 1);
    t.equal(blue.requests[0]?.url, '/old');
  });
  t.test('HTTP/1.0 without Host with unknownHost "reject" -> 421', (t) =>
    refused(t, 'GET / HTTP/1.0\r\n\r\n', 421, { unknownHost: 'reject' }).then(() => t.end()));
  t.end();
});

t.test('Content-Length and Transfer-Encoding', async (t) => {
  t.test('CL with TE -> 400, upstream untouched', (t) =>
    refused(t, 'POST / HTTP/1.1\r\nHost: live.test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /x HTTP/1.1\r\nHost: live.test\r\n\r\n').then(() => t.end()));
  t.test('duplicate Content-Length (different) -> 400', (t) =>
    refused(t, 'POST / HTTP/1.1\r\nHost: live.test\r\nContent-Length: 3\r\nContent-Length: 5\r\nConnection: close\r\n\r\nabcde').then(() => t.end()));
  t.test('duplicate Content-Length (same) -> 400', (t) =>
    refused(t, 'POST / HTTP/1.1\r\nHost: live.test\r\nContent-Length: 3\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc').then(() => t.end()));
  t.test('Content-Length list -> 400', (t) =>
    refused(t, 'POST / HTTP/1.1\r\nHost: live.test\r\nContent-Length: 3, 3\r\nConnection: close\r\n\r\nabc').then(() => t.end()));
  for (const cl of ['-1', '+3', '0x3', '3 3', 'abc', '99999999999999999999999']) {
    t.test(`malformed Content-Length ${JSON.stringify(cl)} -> 400`, (t) =>
      refused(t, `POST / HTTP/1.1\r\nHost: live.test\r\nContent-Length: ${cl}\r\nConnection: close\r\n\r\nabc`).then(() => t.end()));
  }
  for (const te of ['identity', 'gzip', 'gzip, chunked', 'chunked, chunked', 'chunked, identity', 'xchunked', 'chunked;x=1', 'chunked\tx', ' chunked , gzip']) {
    t.test(`Transfer-Encoding ${JSON.stringify(te)} -> 400`, (t) =>
      refused(t, `POST / HTTP/1.1\r\nHost: live.test\r\nTransfer-Encoding: ${te}\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n`).then(() => t.end()));
  }
  t.test('two Transfer-Encoding headers -> 400', (t) =>
    refused(t, 'POST / HTTP/1.1\r\nHost: live.test\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n').then(() => t.end()));
  t.test('Transfer-Encoding on HTTP/1.0 -> 400', (t) =>
    refused(t, 'POST / HTTP/1.0\r\nHost: live.test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n').then(() => t.end()));
  const chunkedAbc = 'POST /c HTTP/1.1\r\nHost: live.test\r\nTransfer-Encoding: Chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n';
  t.test('a single "chunked" (any case) passes, buffered: de-chunked, sent with its length', async (t) => {
    const { blue, p } = await setup(t);
    const reply = await rawExchange(p.port, chunkedAbc);
    t.equal(statusOf(reply), 200);
    t.equal(blue.requests.length, 1);
    t.equal(blue.requests[0]?.body, 'abc');
    t.equal(blue.requests[0]?.headers['transfer-encoding'], undefined);
    t.equal(blue.requests[0]?.headers['content-length'], '3');
  });
  t.test('a single "chunked" (any case) passes, streamed (buffering.requests off): re-framed as chunked', async (t) => {
    const { blue, p } = await setup(t, { buffering: { requests: false } });
    const reply = await rawExchange(p.port, chunkedAbc);
    t.equal(statusOf(reply), 200);
    t.equal(blue.requests.length, 1);
    t.equal(blue.requests[0]?.body, 'abc');
    t.equal(blue.requests[0]?.headers['transfer-encoding'], 'chunked');
    t.equal(blue.requests[0]?.headers['content-length'], undefined);
  });
  t.end();
});

t.test('line endings', async (t) => {
  t.test('obs-fold -> 400', (t) =>
    refused(t, 'GET / HTTP/1.1\r\nHost: live.test\r\nX-Folded: a\r\n b\r\nConnection: close\r\n\r\n').then(() => t.end()));
  t.test('obs-fold with a tab -> 400', (t) =>
    refused(t, 'GET / HTTP/1.1\r\nHost: live.test\r\nX-Folded: a\r\n\tb\r\nConnection: close\r\n\r\n').then(() => t.end()));
  t.test('bare LF between headers -> 400', (t) =>
    refused(t, 'GET / HTTP/1.1\r\nHost: live.test\nX-A: b\r\nConnection: close\r\n\r\n').then(() => t.end()));
  t.test('bare LF everywhere -> 400', (t) => refused(t, 'GET / HTTP/1.1\nHost: live.test\nConnection: close\n\n').then(() => t.end()));
  t.test('bare CR -> 400', (t) => refused(t, 'GET / HTTP/1.1\r\nHost: live.test\rX-A: b\r\nConnection: close\r\n\r\n').then(() => t.end()));
  t.test('space before the colon -> 400', (t) =>
    refused(t, 'GET / HTTP/1.1\r\nHost : live.test\r\nConnection: close\r\n\r\n').then(() => t.end()));
  t.test('bare LF in a chunk size line -> 400 or cut, one upstream request at most', async (t) => {
    const { blue, p } = await setup(t);
    const reply = await rawExchange(p.port, 'POST / HTTP/1.1\r\nHost: live.test\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: live.test\r\n\r\n');
    t.not(statusOf(reply), 200, 'not accepted as a complete request');
    t.notOk(blue.requests.some((r) => r.url === '/smuggled'), 'nothing smuggled');
    await stillServesCounting(t, p.port);
  });
  t.end();
});

t.test('smuggling: the upstream sees exactly the requests the client sent', async (t) => {
  for (const method of ['DELETE', 'OPTIONS', 'GET', 'POST']) {
    t.test(`chunked ${method} carrying a request in its body`, async (t) => {
      const { blue, p } = await setup(t);
      const inner = 'GET /smuggled HTTP/1.1\r\nHost: live.test\r\n\r\n';
      const payload = `${method} /outer HTTP/1.1\r\nHost: live.test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${inner.length.toString(16)}\r\n${inner}\r\n0\r\n\r\n`;
      const reply = await rawExchange(p.port, payload);
      t.equal(statusOf(reply), 200);
      t.equal(blue.parseErrors, 0, 'the upstream parsed everything it got');
      t.same(
        blue.requests.map((r) => r.url),
        ['/outer'],
        'one request upstream',
      );
      t.equal(blue.requests[0]?.body, inner, 'the body went as a body');
      t.notMatch(blue.raw(), /content-length: 0/i, 'never rewritten to Content-Length: 0');
    });
  }
  t.test('pipelined requests stay separate', async (t) => {
    const { blue, p } = await setup(t);
    const one = 'POST /a HTTP/1.1\r\nHost: live.test\r\nContent-Length: 3\r\n\r\nabc';
    const two = 'GET /b HTTP/1.1\r\nHost: live.test\r\nConnection: close\r\n\r\n';
    const reply = await rawExchange(p.port, one + two);
    t.equal(reply.match(/HTTP\/1\.1 200/g)?.length, 2);
    t.same(
      blue.requests.map((r) => `${r.method} ${r.url} ${r.body}`),
      ['POST /a abc', 'GET /b '],
    );
  });
  t.test('a Trailer request header and trailers do not crash or cross', async (t) => {
    const { blue, p } = await setup(t);
    const reply = await rawExchange(p.port, 'POST /t HTTP/1.1\r\nHost: live.test\r\nTrailer: X-Sum\r\nTE: trailers\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\nX-Sum: 1\r\n\r\n');
    t.equal(statusOf(reply), 200);
    t.equal(blue.requests.length, 1);
    t.equal(blue.requests[0]?.headers.trailer, undefined);
    t.equal(blue.requests[0]?.headers.te, undefined);
    await stillServesCounting(t, p.port);
  });
  t.end();
});

t.test('no DEP0169 (url.parse), DEP0060 (util._extend) or other warning on the request path', async (t) => {
  const blue = await startBackend(t, colorHandler('blue'), { websocket: true });
  const green = await startBackend(t, colorHandler('green'));
  const p = await startProxy(t, { blue, green });
  await request(p.port, 'live.test', { path: '/a?b=c' });
  await request(p.port, 'live.test', { method: 'POST', body: 'x', path: '//double/slash' });
  await request(p.port, 'live.test', { path: 'http://live.test/abs' });
  await stillServes(t, p.port);
  // Warnings are emitted on the next tick.
  await new Promise((r) => setImmediate(r));
  t.same(
    warnings.map((w) => `${w.name}: ${w.message}`),
    [],
    'no warning in this whole file',
  );
});
