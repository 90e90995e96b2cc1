// An app whose response head is wrong in ways llhttp accepts: a status below 100, a
// Content-Length on a 204/304, control characters in the reason phrase, a Transfer-Encoding
// other than plain chunked, a 1xx carrying Content-Length. A raw TCP upstream writes the
// crafted bytes, a real proxy relays them, a raw client socket checks the exact bytes it
// gets and that its connection still carries the next request where it should.

import net from 'node:net';
import t, { type Test } from 'tap';
import { colorHandler, startBackend } from '../helpers/backend.js';
import { startProxy } from '../helpers/proxy.js';
import { onRequestHead, rawExchange, startRawUpstream, stillServes } from '../helpers/raw.js';

const BAD_BODY = 'bgproxy: bad response from the green app\n';

/** Blue answers normally; green (next.live.test) is the raw upstream; its sockets are kept. */
async function withRawGreen(t: Test, respond: (s: net.Socket) => void) {
  const blue = await startBackend(t, colorHandler('blue'));
  const sockets: net.Socket[] = [];
  const green = await startRawUpstream(t, (s) => {
    sockets.push(s);
    onRequestHead(respond)(s);
  });
  const p = await startProxy(t, { blue, green });
  return { p, green, sockets };
}

interface Reply {
  status: number;
  /** The status line without CRLF, as the client got it. */
  statusLine: string;
  /** Header lines after the status line (X-Request-Id's value masked). */
  lines: string[];
  body: string;
  /** Every byte of this response. */
  raw: string;
}

/** A kept-alive raw client connection that reads whole responses one at a time. */
class RawClient {
  readonly socket: net.Socket;
  #buf = '';
  #wake: (() => void) | null = null;
  closed = false;

  constructor(port: number) {
    this.socket = net.connect(port, '127.0.0.1');
    this.socket.on('data', (d: Buffer) => {
      this.#buf += d.toString('latin1');
      this.#wake?.();
    });
    this.socket.on('error', () => {});
    this.socket.on('close', () => {
      this.closed = true;
      this.#wake?.();
    });
  }

  send(bytes: string): void {
    this.socket.write(bytes);
  }

  /** Everything received and not yet read as a response. */
  get pending(): string {
    return this.#buf;
  }

  /** Waits up to `ms` for `take` to find a whole response at the start of the buffer. */
  async #until<R>(take: (buf: string) => R | null, ms: number, what: string): Promise<R> {
    const deadline = performance.now() + ms;
    for (;;) {
      const r = take(this.#buf);
      if (r !== null) return r;
      const left = deadline - performance.now();
      if (this.closed || left <= 0) throw new Error(`${what}: got ${JSON.stringify(this.#buf)}${this.closed ? ' then close' : ' then nothing'}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = null;
    }
  }

  /** Reads one response (body by Content-Length, chunked, or none for HEAD/204/304). */
  async response(ms = 4000, noBody = false): Promise<Reply> {
    return this.#until(
      (buf) => {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return null;
        const [statusLine, ...lines] = buf.slice(0, end).split('\r\n');
        const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine!)?.[1] ?? 0);
        const header = (name: string) => lines.find((l) => l.toLowerCase().startsWith(`${name}:`))?.slice(name.length + 1).trim();
        let at = end + 4;
        let body = '';
        if (!noBody && status !== 204 && status !== 304) {
          if (header('transfer-encoding') === 'chunked') {
            for (;;) {
              const eol = buf.indexOf('\r\n', at);
              if (eol < 0) return null;
              const size = Number.parseInt(buf.slice(at, eol), 16);
              if (buf.length < eol + 2 + size + 2) return null;
              body += buf.slice(eol + 2, eol + 2 + size);
              at = eol + 2 + size + 2;
              if (size === 0) break;
            }
          } else {
            const len = Number(header('content-length') ?? 0);
            if (buf.length < at + len) return null;
            body = buf.slice(at, at + len);
            at += len;
          }
        }
        const raw = buf.slice(0, at);
        this.#buf = buf.slice(at);
        return { status, statusLine: statusLine!, lines: lines.map((l) => l.replace(/^(X-Request-Id:) .*/i, '$1 *')), body, raw };
      },
      ms,
      'a whole response',
    );
  }

  close(): void {
    this.socket.destroy();
  }
}

function client(t: Test, port: number): RawClient {
  const c = new RawClient(port);
  t.teardown(() => c.close());
  return c;
}

const GET_GREEN = 'GET / HTTP/1.1\r\nHost: next.live.test\r\n\r\n';
const GET_BLUE = 'GET / HTTP/1.1\r\nHost: live.test\r\n\r\n';

/** Resolves true once `s` has closed, false after `ms`. */
function closedWithin(s: net.Socket, ms: number): Promise<boolean> {
  if (s.destroyed) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    s.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** The client's 502: the standard status line, the fixed body, nothing more on the wire. */
async function expect502(t: Test, c: RawClient, sockets: net.Socket[], name: string): Promise<void> {
  const r = await c.response().catch((e: Error) => ({ status: -1, statusLine: e.message, lines: [], body: '', raw: '' }));
  t.equal(r.statusLine, 'HTTP/1.1 502 Bad Gateway', `${name}: 502 with the standard phrase`);
  t.equal(r.body, BAD_BODY, `${name}: bgproxy's fixed body`);
  t.ok(await closedWithin(sockets.at(-1)!, 3000), `${name}: the upstream socket is closed`);
  // The client's connection carries on: its next request is answered, nothing stray before it.
  c.send(GET_BLUE);
  const next = await c.response().catch((e: Error) => ({ status: -1, body: e.message }));
  t.equal(next.status, 200, `${name}: the next request on the same client connection is answered`);
  t.equal(next.body, 'blue\n', `${name}: with its own body`);
}

t.test('a status below 100 -> 502 at once, the upstream socket closed, the client connection usable', async (t) => {
  for (const code of ['042', '000', '099']) {
    // The app keeps its socket open: before, this hung until upstreamTimeoutMs (60 s).
    const { p, sockets } = await withRawGreen(t, (s) => s.write(`HTTP/1.1 ${code} X\r\nContent-Length: 0\r\n\r\n`));
    const c = client(t, p.port);
    c.send(GET_GREEN);
    await expect502(t, c, sockets, `status ${code}`);
    await stillServes(t, p.port);
  }
});

t.test('Content-Length on a 204 or 304 is dropped; on a HEAD answer it is kept', async (t) => {
  for (const [status, phrase] of [
    [204, 'No Content'],
    [304, 'Not Modified'],
  ] as const) {
    const { p, sockets } = await withRawGreen(t, (s) => s.write(`HTTP/1.1 ${status} ${phrase}\r\nX-A: 1\r\nContent-Length: 5\r\nETag: "e"\r\n\r\n`));
    const c = client(t, p.port);
    c.send(GET_GREEN);
    const r = await c.response();
    t.equal(r.statusLine, `HTTP/1.1 ${status} ${phrase}`);
    t.same(r.lines, ['X-A: 1', 'ETag: "e"', 'X-Request-Id: *', 'Connection: keep-alive'], `${status}: no Content-Length reaches the client`);
    // Twice on the same connection: nothing is taken as a body, the pooled socket is reused.
    c.send(GET_GREEN);
    const again = await c.response();
    t.equal(again.raw, r.raw.replace(/X-Request-Id: [^\r]*/, /X-Request-Id: [^\r]*/.exec(again.raw)![0]), `${status}: the next request gets the same answer`);
    t.equal(c.pending, '', `${status}: nothing else on the wire`);
    t.equal(sockets.length, 1, `${status}: one upstream socket for both`);
  }
  const { p } = await withRawGreen(t, (s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n'));
  const c = client(t, p.port);
  c.send('HEAD / HTTP/1.1\r\nHost: next.live.test\r\n\r\n');
  const r = await c.response(4000, true);
  t.ok(r.lines.includes('Content-Length: 5'), 'a HEAD answer keeps its Content-Length');
  c.send(GET_BLUE);
  t.equal((await c.response()).body, 'blue\n', 'and the connection carries on');
});

t.test('control characters in a reason phrase -> the standard phrase for that status', async (t) => {
  const CASES: Array<[string, string, string]> = [
    ['200 a\x01b', 'HTTP/1.1 200 OK', 'SOH'],
    ['200 OK\x00', 'HTTP/1.1 200 OK', 'NUL'],
    ['404 Not\x1b[31mFound', 'HTTP/1.1 404 Not Found', 'an ANSI escape'],
    ['503 Busy\x7f', 'HTTP/1.1 503 Service Unavailable', 'DEL'],
    ['200 Split\x0bHere', 'HTTP/1.1 200 OK', 'VT'],
    ['200 Fine\tby me', 'HTTP/1.1 200 Fine\tby me', 'HTAB (allowed: kept)'],
  ];
  for (const [line, want, name] of CASES) {
    const { p } = await withRawGreen(t, (s) => s.write(Buffer.from(`HTTP/1.1 ${line}\r\nContent-Length: 2\r\n\r\nok`, 'latin1')));
    const c = client(t, p.port);
    c.send(GET_GREEN);
    const r = await c.response().catch((e: Error) => ({ statusLine: e.message, body: '' }));
    t.equal(r.statusLine, want, `${name}: ${JSON.stringify(want)}`);
    t.equal(r.body, 'ok', `${name}: the body relayed`);
    c.send(GET_BLUE);
    t.equal((await c.response()).body, 'blue\n', `${name}: the connection carries on`);
  }
});

t.test('a Transfer-Encoding other than plain chunked -> 502, the upstream socket closed', async (t) => {
  const CASES: Array<[string, string]> = [
    ['gzip, chunked', 'Transfer-Encoding: gzip, chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n'],
    ['chunked, identity', 'Transfer-Encoding: chunked, identity\r\n\r\nokok'],
    ['identity', 'Transfer-Encoding: identity\r\n\r\nokok'],
    ['chunked twice', 'Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n'],
    ['an empty list element', 'Transfer-Encoding: , chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n'],
  ];
  for (const [name, rest] of CASES) {
    // The app keeps its socket open (a close-delimited body would never end).
    const { p, sockets } = await withRawGreen(t, (s) => s.write(`HTTP/1.1 200 OK\r\n${rest}`));
    const c = client(t, p.port);
    c.send(GET_GREEN);
    await expect502(t, c, sockets, name);
  }
  for (const te of ['chunked', 'Chunked ']) {
    const { p } = await withRawGreen(t, (s) => s.write(`HTTP/1.1 200 OK\r\nTransfer-Encoding: ${te}\r\n\r\n2\r\nok\r\n0\r\n\r\n`));
    const c = client(t, p.port);
    c.send(GET_GREEN);
    const r = await c.response();
    t.equal(r.status, 200, `${JSON.stringify(te)}: relayed`);
    t.equal(r.body, 'ok', `${JSON.stringify(te)}: its body re-chunked`);
  }
});

t.test('a 1xx with Content-Length has no body: nothing of it reaches the client', async (t) => {
  for (const info of ['199 Whatever', '103 Early Hints', '150 X']) {
    // RFC 9110 §15.2: a 1xx ends at its head; the 200 follows at once.
    const { p, sockets } = await withRawGreen(t, (s) => s.write(`HTTP/1.1 ${info}\r\nContent-Length: 5\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok`));
    const c = client(t, p.port);
    c.send(GET_GREEN);
    const r = await c.response().catch((e: Error) => ({ statusLine: e.message, raw: '', body: '' }));
    t.equal(r.statusLine, 'HTTP/1.1 200 OK', `${info}: the client's answer is the 200`);
    t.equal(r.body, 'ok', `${info}: with its body`);
    t.ok(r.raw.startsWith('HTTP/1.1 200 OK\r\n'), `${info}: nothing before it`);
    c.send(GET_GREEN);
    const again = await c.response().catch((e: Error) => ({ statusLine: e.message, body: '' }));
    t.equal(again.statusLine, 'HTTP/1.1 200 OK', `${info}: the next request too`);
    t.equal(again.body, 'ok', `${info}: with its own body`);
    t.equal(sockets.length, 1, `${info}: on the same upstream socket`);
  }
  // An app that does send 5 "body" bytes after its 1xx: they are not HTTP, so 502, and
  // none of them reach the client.
  const { p, sockets } = await withRawGreen(t, (s) => s.write('HTTP/1.1 199 X\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'));
  const c = client(t, p.port);
  c.send(GET_GREEN);
  await expect502(t, c, sockets, '1xx then body bytes');
  await stillServes(t, p.port);
});

// The same heads as the answer to an upgrade request (a websocket the app refuses): they
// are read by the tunnel's own parser, and relayed with Connection: close.
const UPGRADE = 'GET /ws HTTP/1.1\r\nHost: next.live.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n';

/** The status line and header lines (X-Request-Id masked) of what the client got before the close, and the rest. */
function split(reply: string): { statusLine: string; lines: string[]; body: string } {
  const end = reply.indexOf('\r\n\r\n');
  const [statusLine, ...lines] = (end < 0 ? reply : reply.slice(0, end)).split('\r\n');
  return { statusLine: statusLine!, lines: lines.map((l) => l.replace(/^(X-Request-Id:) .*/i, '$1 *')), body: end < 0 ? '' : reply.slice(end + 4) };
}

t.test('answers to an upgrade request: the same heads are refused, cleaned or read the same way', async (t) => {
  const CASES: Array<[string, string, (r: ReturnType<typeof split>) => void]> = [
    ['a status below 100', 'HTTP/1.1 042 X\r\nContent-Length: 0\r\n\r\n', (r) => t.equal(r.statusLine, 'HTTP/1.1 502 Bad Gateway', 'a status below 100: 502 at once')],
    [
      'Content-Length on a 204',
      'HTTP/1.1 204 No Content\r\nX-A: 1\r\nContent-Length: 5\r\n\r\n',
      (r) => t.same([r.statusLine, ...r.lines], ['HTTP/1.1 204 No Content', 'X-A: 1', 'X-Request-Id: *', 'Connection: close'], 'a 204: no Content-Length'),
    ],
    ['a control character in the phrase', 'HTTP/1.1 403 No\x1b[2Jpe\r\nContent-Length: 2\r\n\r\nno', (r) => t.equal(r.statusLine, 'HTTP/1.1 403 Forbidden', 'a control character: the standard phrase')],
    ['Transfer-Encoding: gzip, chunked', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n', (r) => t.equal(r.statusLine, 'HTTP/1.1 502 Bad Gateway', 'gzip, chunked: 502')],
    ['Transfer-Encoding: identity', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\nokok', (r) => t.equal(r.statusLine, 'HTTP/1.1 502 Bad Gateway', 'identity: 502')],
    [
      'a 199 with Content-Length',
      'HTTP/1.1 199 X\r\nContent-Length: 5\r\n\r\nHTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno',
      (r) => t.same([r.statusLine, r.body], ['HTTP/1.1 403 Forbidden', 'no'], 'a 199 with Content-Length: the final answer, whole'),
    ],
  ];
  for (const [name, answer, check] of CASES) {
    // The app keeps its socket open: a refused head must not wait for it.
    const { p, sockets } = await withRawGreen(t, (s) => s.write(Buffer.from(answer, 'latin1')));
    const started = performance.now();
    const reply = await rawExchange(p.port, UPGRADE, 4000);
    check(split(reply));
    t.ok(performance.now() - started < 3500, `${name}: answered, not left waiting`);
    if (split(reply).statusLine.includes(' 502 ')) t.ok(await closedWithin(sockets.at(-1)!, 3000), `${name}: the upstream socket is closed`);
  }
});

t.test('bytes above 0x7F in a relayed head (obs-text, UTF-8 from the app) go out as they came, not re-encoded', async (t) => {
  // llhttp hands them over as latin1 strings; written as UTF-8 they grew (é became Ã©).
  const head = 'HTTP/1.1 200 Caf\xe9\r\nX-Utf8: caf\xc3\xa9 \xe2\x82\xac\r\nX-Latin: \xe9t\xe9\r\nContent-Length: 2\r\n\r\nok';
  const { p } = await withRawGreen(t, (s) => s.write(Buffer.from(head, 'latin1')));
  const c = client(t, p.port);
  c.send(GET_GREEN);
  const r = await c.response();
  t.equal(r.statusLine, 'HTTP/1.1 200 Caf\xe9', 'the phrase byte for byte');
  t.ok(r.lines.includes('X-Utf8: caf\xc3\xa9 \xe2\x82\xac'), 'a UTF-8 value byte for byte');
  t.ok(r.lines.includes('X-Latin: \xe9t\xe9'), 'a latin1 value byte for byte');
  t.equal(r.body, 'ok');
  c.send(GET_BLUE);
  t.equal((await c.response()).body, 'blue\n', 'the connection carries on');
  // The same as the answer to an upgrade request.
  const reply = split(await rawExchange(p.port, UPGRADE, 4000));
  t.equal(reply.statusLine, 'HTTP/1.1 200 Caf\xe9', 'upgrade answer: the phrase byte for byte');
  t.ok(reply.lines.includes('X-Utf8: caf\xc3\xa9 \xe2\x82\xac'), 'upgrade answer: a UTF-8 value byte for byte');
});
