// An app that misbehaves on the wire after a complete answer: bytes after a bodiless
// response (a body sent with a 204/304, or with the answer to a HEAD), at once or a moment
// later on a socket that is idle in the pool. As nginx does, the client gets its response
// and its keep-alive connection; the upstream socket that sent the stray bytes is dropped,
// so they are never read as the answer to the next request.
import http from 'node:http';
import type net from 'node:net';
import t from 'tap';
import { colorHandler, startBackend } from '../helpers/backend.js';
import { startProxy } from '../helpers/proxy.js';
import { startRawUpstream } from '../helpers/raw.js';

/** Answers by request line; stray bytes follow the bodiless answers. */
function strayApp(s: net.Socket): void {
  let buf = '';
  s.on('data', (d: Buffer) => {
    buf += d.toString('latin1');
    let end = buf.indexOf('\r\n\r\n');
    while (end >= 0) {
      const line = buf.slice(0, buf.indexOf('\r\n'));
      buf = buf.slice(end + 4);
      end = buf.indexOf('\r\n\r\n');
      if (line.startsWith('HEAD ')) s.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello');
      else if (line.startsWith('GET /204 ')) s.write('HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstray');
      else if (line.startsWith('GET /304 ')) s.write('HTTP/1.1 304 Not Modified\r\nETag: "a"\r\n\r\ngarbage');
      else if (line.startsWith('GET /late ')) {
        s.write('HTTP/1.1 204 No Content\r\n\r\n');
        setTimeout(() => s.writable && s.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlate'), 30);
      } else s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    }
  });
}

t.test('stray bytes after a complete bodiless answer cost the client nothing', async (t) => {
  const blue = await startBackend(t, colorHandler('blue'));
  const green = await startRawUpstream(t, strayApp);
  const p = await startProxy(t, { blue, green, settings: { timeouts: { upstreamIdleMs: 5000 } } });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  const clientSockets = new Set<net.Socket>();
  const send = (method: string, path: string): Promise<{ status: number; body: string; reused: boolean }> =>
    new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: p.port, method, path, agent, headers: { host: 'next.live.test' } }, (res) => {
        let body = '';
        res.setEncoding('latin1');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, reused: req.reusedSocket }));
        res.on('error', reject);
      });
      req.on('socket', (s: net.Socket) => clientSockets.add(s));
      req.on('error', reject);
      req.end();
    });
  const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

  const cases: Array<[string, string, number, string]> = [
    ['HEAD', '/', 200, ''],
    ['GET', '/after-head', 200, 'ok'],
    ['GET', '/204', 204, ''],
    ['GET', '/after-204', 200, 'ok'],
    ['GET', '/304', 304, ''],
    ['GET', '/after-304', 200, 'ok'],
    ['GET', '/late', 204, ''],
  ];
  for (const [method, path, status, body] of cases) {
    const r = await send(method, path);
    t.equal(r.status, status, `${method} ${path} -> ${status}`);
    t.equal(r.body, body, `${method} ${path}: the body the app meant`);
  }
  // The late stray bytes land on a socket idle in the pool: it is dropped, not reused.
  await wait(100);
  for (let i = 0; i < 3; i++) {
    const r = await send('GET', `/after-late-${i}`);
    t.equal(r.status, 200, 'after the late stray bytes: 200');
    t.equal(r.body, 'ok', 'after the late stray bytes: the right body');
  }
  t.equal(clientSockets.size, 1, 'the client kept one keep-alive connection throughout');
  t.ok(green.connections >= 5, `every upstream socket that sent stray bytes was replaced (${green.connections} connections)`);
});
