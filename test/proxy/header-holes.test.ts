// The head bgproxy sends to the app, byte by byte: raw clients against a real proxy, and
// upstreams that record every byte they receive. Four holes: a Connection header that
// removed Content-Length (or Host, Forwarded, X-Forwarded-*) as "hop-by-hop" while the
// body still went (the app read the body as a second request); header names with an
// underscore (gunicorn maps X_Forwarded_For onto X-Forwarded-For); X-Forwarded-* beyond the
// three bgproxy sets passed from untrusted clients; and header bytes 0x80-0xFF re-encoded
// as UTF-8 on the way (the app must get the bytes the client sent, as nginx passes them).
import type net from 'node:net';
import t from 'tap';
import { headBytes } from '../../src/proxy/headers.js';
import { colorHandler, startBackend } from '../helpers/backend.js';
import { startProxy } from '../helpers/proxy.js';
import { rawExchange, startCountingUpstream, startRawUpstream, statusOf } from '../helpers/raw.js';

const SETTINGS = { unknownHost: 'reject', timeouts: { headersMs: 3000, requestMs: 3000 } };

/** The header lines of the first head in `raw` (latin1 view), as [name, value] pairs. */
function headLines(raw: string): Array<[string, string]> {
  const end = raw.indexOf('\r\n\r\n');
  return raw
    .slice(raw.indexOf('\r\n') + 2, end)
    .split('\r\n')
    .map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()] as [string, string]);
}

/** A raw upstream keeping each connection's bytes; every head it reads is answered with `answer` (latin1). */
async function recordingUpstream(t: { teardown(fn: () => unknown): void }, answer: string): Promise<{ port: number; bytes(): string }> {
  const conns: Buffer[][] = [];
  const up = await startRawUpstream(t, (s: net.Socket) => {
    const mine: Buffer[] = [];
    conns.push(mine);
    let pending = '';
    s.on('data', (d: Buffer) => {
      mine.push(d);
      pending += d.toString('latin1');
      // Only bodiless requests are sent here: one answer per blank line.
      for (let at = pending.indexOf('\r\n\r\n'); at >= 0; at = pending.indexOf('\r\n\r\n')) {
        pending = pending.slice(at + 4);
        s.write(Buffer.from(answer, 'latin1'));
      }
    });
  });
  return { port: up.port, bytes: () => conns.map((c) => Buffer.concat(c).toString('latin1')).join('') };
}

t.test('Connection never removes Content-Length: the body is not read as a second request', async (t) => {
  const up = await startCountingUpstream(t);
  const p = await startProxy(t, { blue: up, green: await startBackend(t, colorHandler('green')), settings: SETTINGS });
  const smuggled = 'GET /smuggled HTTP/1.1\r\nHost: live.test\r\n\r\n';
  for (const conn of ['Content-Length', 'keep-alive, content-length', 'close, Content-Length']) {
    up.requests.length = 0;
    const reply = await rawExchange(
      p.port,
      `POST /a HTTP/1.1\r\nHost: live.test\r\nConnection: ${conn}\r\nContent-Length: ${smuggled.length}\r\n\r\n${smuggled}` +
        'GET /end HTTP/1.1\r\nHost: live.test\r\nConnection: close\r\n\r\n',
    );
    t.equal(statusOf(reply), 200, `${conn}: answered`);
    t.notOk(
      up.requests.some((r) => r.url === '/smuggled'),
      `${conn}: the body never reached the app as a request`,
    );
    const post = up.requests.find((r) => r.url === '/a');
    t.equal(post?.body, smuggled, `${conn}: the app got the POST with its body`);
    t.equal(post?.headers['content-length'], String(smuggled.length), `${conn}: with its Content-Length`);
  }
  t.equal(up.parseErrors, 0, 'nothing the app could not parse');
});

t.test('Connection never removes Host, X-Forwarded-*, Forwarded, X-Real-IP or X-Request-Id', async (t) => {
  const up = await startCountingUpstream(t);
  // A trusted proxy's forwarding headers are kept: Connection must not take them away.
  const p = await startProxy(t, { blue: up, green: await startBackend(t, colorHandler('green')), settings: { ...SETTINGS, trustProxy: ['127.0.0.1'] } });
  const reply = await rawExchange(
    p.port,
    'GET /a HTTP/1.1\r\nHost: live.test\r\n' +
      'Connection: close, Host, X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host, X-Forwarded-Port, Forwarded, X-Real-IP, X-Request-Id\r\n' +
      'X-Forwarded-For: 1.2.3.4\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: shop.example\r\nX-Forwarded-Port: 443\r\n' +
      'Forwarded: for=1.2.3.4;proto=https\r\nX-Real-IP: 1.2.3.4\r\nX-Request-Id: 0123456789abcdef0123456789abcdef\r\n\r\n',
  );
  t.equal(statusOf(reply), 200, 'answered');
  const h = up.requests[0]?.headers ?? {};
  t.equal(h.host, 'live.test', 'Host kept');
  t.equal(h['x-forwarded-for'], '1.2.3.4, 127.0.0.1', 'the trusted proxy\u2019s X-Forwarded-For extended');
  t.equal(h['x-forwarded-proto'], 'https', 'X-Forwarded-Proto kept');
  t.equal(h['x-forwarded-host'], 'shop.example', 'X-Forwarded-Host kept');
  t.equal(h['x-forwarded-port'], '443', 'X-Forwarded-Port kept');
  t.equal(h.forwarded, 'for=1.2.3.4;proto=https', 'Forwarded kept');
  t.equal(h['x-real-ip'], '1.2.3.4', 'X-Real-IP kept');
  t.ok(typeof h['x-request-id'] === 'string' && h['x-request-id'] !== '', 'an X-Request-Id reached the app');
});

t.test('Connection still removes the headers it may: an end-to-end header it lists', async (t) => {
  const up = await startCountingUpstream(t);
  const p = await startProxy(t, { blue: up, green: await startBackend(t, colorHandler('green')), settings: SETTINGS });
  await rawExchange(p.port, 'GET /a HTTP/1.1\r\nHost: live.test\r\nConnection: close, X-Hop\r\nX-Hop: 1\r\nX-Kept: 2\r\n\r\n');
  const h = up.requests[0]?.headers ?? {};
  t.equal(h['x-hop'], undefined, 'X-Hop (listed) removed');
  t.equal(h['x-kept'], '2', 'X-Kept passed');
});

t.test('an app\u2019s Connection: Content-Length does not strip the length of its answer', async (t) => {
  const up = await recordingUpstream(t, 'HTTP/1.1 200 OK\r\nConnection: Content-Length, X-Hop\r\nX-Hop: 1\r\nContent-Length: 2\r\n\r\nok');
  const p = await startProxy(t, { blue: up, green: await startBackend(t, colorHandler('green')), settings: SETTINGS });
  const reply = await rawExchange(p.port, 'GET /a HTTP/1.1\r\nHost: live.test\r\n\r\nGET /b HTTP/1.1\r\nHost: live.test\r\nConnection: close\r\n\r\n');
  const heads = reply.split('\r\n\r\n').filter((h) => h.includes('HTTP/1.1 200'));
  t.equal(heads.length, 2, 'two answers');
  for (const h of heads) {
    t.match(h, /\r\nContent-Length: 2(\r\n|$)/, 'each answer keeps its Content-Length');
    t.notMatch(h, /X-Hop/, 'the header it listed is removed');
  }
});

t.test('header names with an underscore never reach the app', async (t) => {
  const up = await startCountingUpstream(t);
  const p = await startProxy(t, { blue: up, green: await startBackend(t, colorHandler('green')), settings: SETTINGS });
  const reply = await rawExchange(
    p.port,
    'GET /a HTTP/1.1\r\nHost: live.test\r\nX_Forwarded_For: 6.6.6.6\r\nX_Real_IP: 6.6.6.6\r\nX-Forwarded_Host: evil.example\r\nSome_Header: 1\r\nX-Ok: 1\r\nConnection: close\r\n\r\n',
  );
  t.equal(statusOf(reply), 200, 'answered');
  const names = headLines(up.raw()).map(([n]) => n);
  t.same(
    names.filter((n) => n.includes('_')),
    [],
    'no header name with an underscore in the forwarded head',
  );
  t.ok(names.includes('X-Ok'), 'the other headers passed');
  t.equal(up.requests[0]?.headers['x-forwarded-for'], '127.0.0.1', 'X-Forwarded-For is bgproxy\u2019s');
});

t.test('an untrusted client\u2019s X-Forwarded-*, Forwarded and X-Real-IP are all dropped', async (t) => {
  const up = await startCountingUpstream(t);
  const p = await startProxy(t, { blue: up, green: await startBackend(t, colorHandler('green')), settings: SETTINGS });
  const reply = await rawExchange(
    p.port,
    'GET /a HTTP/1.1\r\nHost: live.test\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Host: evil.example\r\nX-Forwarded-Proto: https\r\n' +
      'X-Forwarded-Port: 443\r\nX-Forwarded-Prefix: /admin\r\nX-Forwarded-Server: evil\r\nX-Forwarded-Ssl: on\r\nX-Forwarded-Scheme: https\r\n' +
      'x-forwarded-user: root\r\nForwarded: for=6.6.6.6;host=evil.example\r\nX-Real-IP: 6.6.6.6\r\nConnection: close\r\n\r\n',
  );
  t.equal(statusOf(reply), 200, 'answered');
  const fwd = headLines(up.raw()).filter(([n]) => /^(x-forwarded-|forwarded$|x-real-ip$)/i.test(n));
  t.same(
    fwd,
    [
      ['X-Forwarded-For', '127.0.0.1'],
      ['X-Forwarded-Proto', 'http'],
      ['X-Forwarded-Host', 'live.test'],
    ],
    'only the forwarding headers bgproxy sets reach the app',
  );
});

t.test('header bytes 0x80-0xFF reach the app and the client as they were sent', async (t) => {
  const answer = 'HTTP/1.1 200 OK\r\nX-App: caf\xe9 \xff\xa0\r\nContent-Length: 2\r\n\r\nok';
  const up = await recordingUpstream(t, answer);
  const p = await startProxy(t, { blue: up, green: await startBackend(t, colorHandler('green')), settings: SETTINGS });
  const reply = await rawExchange(p.port, Buffer.from('GET /a HTTP/1.1\r\nHost: live.test\r\nX-Name: caf\xe9 \xff\xa0\x80\r\nConnection: close\r\n\r\n', 'latin1'));
  t.equal(statusOf(reply), 200, 'answered');
  t.ok(up.bytes().includes('\r\nX-Name: caf\xe9 \xff\xa0\x80\r\n'), 'the request header\u2019s bytes unchanged at the app');
  t.notOk(up.bytes().includes('\xc3'), 'nothing re-encoded as UTF-8');
  t.ok(reply.includes('\r\nX-App: caf\xe9 \xff\xa0\r\n'), 'the response header\u2019s bytes unchanged at the client');
});

t.test('an upgrade\u2019s head carries header bytes 0x80-0xFF unchanged too', async (t) => {
  const up = await recordingUpstream(t, 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-App: \xe9\r\n\r\n');
  const p = await startProxy(t, { blue: up, green: await startBackend(t, colorHandler('green')), settings: SETTINGS });
  const reply = await rawExchange(
    p.port,
    Buffer.from('GET /ws HTTP/1.1\r\nHost: live.test\r\nUpgrade: websocket\r\nConnection: Upgrade, Content-Length\r\nX-Name: \xe9\xff\r\nSome_Thing: 1\r\n\r\n', 'latin1'),
    1500,
  );
  t.equal(statusOf(reply), 101, 'switched');
  t.ok(up.bytes().includes('\r\nX-Name: \xe9\xff\r\n'), 'the header\u2019s bytes unchanged at the app');
  t.notOk(up.bytes().includes('Some_Thing'), 'no underscore header');
});

t.test('headBytes: latin1 bytes for U+0000-U+00FF, UTF-8 for runs above', async (t) => {
  t.same([...headBytes('a\u00e9\u00ff')], [0x61, 0xe9, 0xff]);
  t.same([...headBytes('\u00e9\u20ac\u00e9')], [0xe9, 0xe2, 0x82, 0xac, 0xe9]);
  t.same([...headBytes('x\u{1f600}y')], [0x78, 0xf0, 0x9f, 0x98, 0x80, 0x79]);
  t.same([...headBytes('plain')], [...Buffer.from('plain')]);
});
