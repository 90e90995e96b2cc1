// Websocket upgrade variants: unknown host, refusing upstream, an upstream that answers
// 200 (or garbage, or hangs up) instead of 101, malformed upgrades. No crash, an answer.
import net from 'node:net';
import t, { type Test } from 'tap';
import WebSocket from 'ws';
import { colorHandler, openWebSocket, startBackend } from '../helpers/backend.js';
import { startProxy } from '../helpers/proxy.js';
import { onRequestHead, rawExchange, startRawUpstream, statusOf, stillServes } from '../helpers/raw.js';

const UPGRADE = (host: string, extra = ''): string =>
  `GET /ws HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n${extra}\r\n`;

async function withGreen(t: Test, onConnection: (s: net.Socket) => void, settings: Record<string, unknown> = {}) {
  const blue = await startBackend(t, colorHandler('blue'), { websocket: true });
  const green = await startRawUpstream(t, onConnection);
  return startProxy(t, { blue, green, settings });
}

t.test('unknown host with unknownHost "reject" -> 421, no upstream contact', async (t) => {
  const p = await withGreen(t, () => t.fail('no upstream contact'), { unknownHost: 'reject' });
  t.equal(statusOf(await rawExchange(p.port, UPGRADE('elsewhere.test'))), 421);
  await stillServes(t, p.port);
});

t.test('bad Host, two Hosts, odd Transfer-Encoding on an upgrade -> 400', async (t) => {
  const p = await withGreen(t, () => t.fail('no upstream contact'));
  t.equal(statusOf(await rawExchange(p.port, UPGRADE('bad host'))), 400);
  t.equal(statusOf(await rawExchange(p.port, UPGRADE('next.live.test', 'Host: live.test\r\n'))), 400);
  t.equal(statusOf(await rawExchange(p.port, UPGRADE('next.live.test', 'Transfer-Encoding: gzip, chunked\r\n'))), 400);
  await stillServes(t, p.port);
});

t.test('upstream refusing -> 502', async (t) => {
  const blue = await startBackend(t, colorHandler('blue'), { websocket: true });
  const green = await startBackend(t, colorHandler('green'));
  const p = await startProxy(t, { blue, green });
  await green.close();
  t.equal(statusOf(await rawExchange(p.port, UPGRADE('next.live.test'))), 502);
  await stillServes(t, p.port);
});

const ANSWERS: Array<[string, string]> = [
  ['200 instead of 101', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello'],
  ['404 instead of 101', 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n'],
  ['garbage', 'garbage\r\n\r\n'],
  ['a hang-up', ''],
];

for (const [name, answer] of ANSWERS) {
  t.test(`upstream answering ${name}: no crash, the client gets an answer or a close`, async (t) => {
    const p = await withGreen(
      t,
      onRequestHead((s) => (answer ? s.end(answer) : s.destroy())),
    );
    const reply = await rawExchange(p.port, UPGRADE('next.live.test'));
    t.not(statusOf(reply), 101, 'never a 101');
    t.ok(reply === '' || /^HTTP\/1\.1 [2-5]\d\d/.test(reply), `an HTTP answer or a close (${JSON.stringify(reply.slice(0, 40))})`);
    const ws = new WebSocket(`ws://127.0.0.1:${p.port}/`, { headers: { host: 'next.live.test' } });
    await new Promise<void>((resolve) => {
      ws.once('error', () => resolve());
      ws.once('open', () => resolve());
    });
    t.not(ws.readyState, WebSocket.OPEN, 'the ws client does not believe it is connected');
    ws.terminate();
    await stillServes(t, p.port);
  });
}

t.test('upstream that accepts and never answers the upgrade: the client is released at upstreamTimeoutMs', async (t) => {
  const p = await withGreen(t, () => {}, { upstreamTimeoutMs: 300 });
  const started = performance.now();
  const reply = await rawExchange(p.port, UPGRADE('next.live.test'), 8000);
  const ms = Math.round(performance.now() - started);
  t.equal(statusOf(reply), 504, 'answered 504');
  t.ok(ms < 3000, `released after ${ms} ms, not left hanging`);
  await stillServes(t, p.port);
});

t.test('client resets during and after the upgrade: no crash', async (t) => {
  const p = await withGreen(t, onRequestHead((s) => s.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n')));
  for (let i = 0; i < 20; i++) {
    await new Promise<void>((resolve) => {
      const s = net.connect(p.port, '127.0.0.1', () => {
        s.write(UPGRADE('next.live.test'));
        if (i % 2 === 0) s.resetAndDestroy();
        else s.once('data', () => s.resetAndDestroy());
      });
      s.on('error', () => {});
      s.once('close', () => resolve());
    });
  }
  await stillServes(t, p.port);
  t.equal(p.bg.target('green').websockets, 0, 'no websocket left tracked');
});

t.test('a normal websocket still works through the proxy, idle longer than upstreamTimeoutMs', async (t) => {
  const p = await withGreen(t, () => {}, { upstreamTimeoutMs: 200 });
  const { ws } = await openWebSocket(t, p.port, 'live.test');
  const reply = new Promise<string>((resolve) => ws.once('message', (m) => resolve(m.toString())));
  // Idle past the upstream timeout: that timeout is for the upgrade answer only.
  await new Promise((r) => setTimeout(r, 500));
  ws.send('hi');
  t.equal(await reply, 'echo:hi');
});
