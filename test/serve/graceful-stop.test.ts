// What a graceful stop of serve does to each kind of client connection (see
// closeGracefully): a response in flight finishes and says Connection: close, a request on a
// kept connection during the stop is still answered (and is its last), an idle keep-alive
// connection gets a grace period instead of being cut at once, and a websocket is closed.
import net from 'node:net';
import t from 'tap';
import { IDLE_GRACE_MS } from '../../src/proxy/proxy-server.js';
import { colorHandler, openWebSocket, startBackend } from '../helpers/backend.js';
import { startProxy } from '../helpers/proxy.js';

/** A raw keep-alive connection: send a request, read one response head + body, know when it closes. */
function rawConnection(port: number): Promise<{
  send(path: string): Promise<string>;
  closedAt: Promise<number>;
}> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let buf = '';
    let want: ((reply: string) => void) | null = null;
    s.setEncoding('latin1');
    s.on('data', (d: string) => {
      buf += d;
      const end = buf.indexOf('\r\n\r\n');
      const len = /content-length: (\d+)/i.exec(buf);
      if (want && end >= 0 && len && buf.length >= end + 4 + Number(len[1])) {
        const reply = buf.slice(0, end + 4 + Number(len[1]));
        buf = buf.slice(reply.length);
        const w = want;
        want = null;
        w(reply);
      }
    });
    const closedAt = new Promise<number>((r) => s.once('close', () => r(performance.now())));
    s.once('error', () => {});
    s.once('connect', () =>
      resolve({
        send: (path) =>
          new Promise((r) => {
            want = r;
            s.write(`GET ${path} HTTP/1.1\r\nHost: live.test\r\n\r\n`);
          }),
        closedAt,
      }),
    );
    s.once('error', reject);
  });
}

t.test('a graceful stop: in-flight answered with Connection: close, kept connections get a grace, websockets closed', async (t) => {
  const blue = await startBackend(t, colorHandler('blue'), { websocket: true });
  const green = await startBackend(t, colorHandler('green'));
  // A drain deadline far beyond what a loaded machine takes to finish the HTTP side.
  const p = await startProxy(t, { blue, green, settings: { drainTimeoutMs: 60_000 } });

  const idle = await rawConnection(p.port);
  t.match(await idle.send('/'), /^HTTP\/1\.1 200[\s\S]*Connection: keep-alive[\s\S]*blue\n$/i, 'a kept connection, now idle');
  const busy = await rawConnection(p.port);
  const inFlight = busy.send('/slow?ms=300');
  const late = await rawConnection(p.port);
  t.match(await late.send('/'), /^HTTP\/1\.1 200/);
  const ws = await openWebSocket(t, p.port, 'live.test');
  t.equal(await ws.echo('hi'), 'echo:hi');
  const wsClosed = new Promise<number>((r) => ws.ws.once('close', () => r(performance.now())));

  const stopAt = performance.now();
  const stopped = p.stop();
  // A request on a kept connection after the stop began: answered, and the connection's last.
  await new Promise((r) => setTimeout(r, 100));
  const lateReply = await late.send('/');
  t.match(lateReply, /^HTTP\/1\.1 200[\s\S]*Connection: close[\s\S]*blue\n$/i, 'a request during the stop is answered, with Connection: close');
  const busyReply = await inFlight;
  t.match(busyReply, /^HTTP\/1\.1 200[\s\S]*Connection: close[\s\S]*blue\n$/i, 'the response in flight finishes, with Connection: close');
  await busy.closedAt;
  await late.closedAt;

  const idleClosed = (await idle.closedAt) - stopAt;
  t.ok(idleClosed >= IDLE_GRACE_MS - 20, `the idle connection was given its grace (closed ${Math.round(idleClosed)} ms after the stop)`);
  const wsAfter = (await wsClosed) - stopAt;
  // drainTimeoutMs is 60000 here: a websocket closed well before it was closed on purpose, not cut at the deadline.
  t.ok(wsAfter < 30_000, `the websocket was closed once HTTP was done (${Math.round(wsAfter)} ms after the stop)`);
  await stopped;
  t.pass('stop completed');
});
