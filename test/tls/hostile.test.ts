// Hostile handshakes on the TLS listener: garbage instead of a ClientHello, a handshake
// that never finishes, a flood of both. No crash, every socket closed, nothing left behind.
import net from 'node:net';
import t from 'tap';
import { colorHandler, startBackend } from '../helpers/backend.js';
import { startProxy } from '../helpers/proxy.js';
import { httpsRequest, issueCert, makeCa } from '../helpers/tls.js';

const wait = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function tcpSockets(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length;
}

/** Connects, writes `data` (or nothing), resolves with how long until the server closed it. */
function closedAfter(port: number, data: Buffer | null): Promise<{ ms: number; got: number }> {
  return new Promise((resolve) => {
    const started = performance.now();
    let got = 0;
    const s = net.connect(port, '127.0.0.1', () => {
      if (data) s.write(data);
    });
    s.on('data', (d: Buffer) => (got += d.length));
    s.on('error', () => {});
    s.on('close', () => resolve({ ms: performance.now() - started, got }));
  });
}

// A ClientHello cut short: the record header promises more than ever comes.
const PARTIAL_HELLO = Buffer.from('16030100c8010000c40303', 'hex');

t.test('garbage, a stalled handshake and a flood of both: closed, counted, nothing leaks, service goes on', async (t) => {
  const ca = makeCa(t);
  const cert = issueCert(ca, 'live', ['live.test']);
  const blue = await startBackend(t, colorHandler('blue'));
  const green = await startBackend(t, colorHandler('green'));
  const p = await startProxy(t, { blue, green, settings: { tls: { listen: '127.0.0.1:0', certificates: [cert], handshakeTimeoutMs: 300 } } });
  const port = Number(p.tlsListen!.split(':').pop());
  t.equal((await httpsRequest({ port, host: 'live.test', ca: ca.pem })).status, 200);
  const baseline = tcpSockets();

  const garbage = await closedAfter(port, Buffer.from('GET / HTTP/1.1\r\nHost: live.test\r\n\r\n'));
  t.ok(garbage.ms < 1000, `plain HTTP on the TLS port: closed at once (${Math.round(garbage.ms)} ms)`);
  const random = await closedAfter(port, Buffer.from(Array.from({ length: 512 }, (_, i) => (i * 7919) % 256)));
  t.ok(random.ms < 1000, `random bytes: closed at once (${Math.round(random.ms)} ms)`);
  const silent = await closedAfter(port, null);
  t.ok(silent.ms >= 250 && silent.ms < 2000, `nothing sent: closed at the handshake timeout (${Math.round(silent.ms)} ms)`);
  const stalled = await closedAfter(port, PARTIAL_HELLO);
  t.ok(stalled.ms >= 250 && stalled.ms < 2000, `a ClientHello cut short: closed at the handshake timeout (${Math.round(stalled.ms)} ms)`);

  const flood = await Promise.all(
    Array.from({ length: 200 }, (_, i) => closedAfter(port, i % 3 === 0 ? null : i % 3 === 1 ? PARTIAL_HELLO : Buffer.from('\x16\x03\x01\x00\x05hello'))),
  );
  t.ok(
    flood.every((f) => f.ms < 3000),
    `200 hostile connections all closed (slowest ${Math.round(Math.max(...flood.map((f) => f.ms)))} ms)`,
  );
  const s = p.bg.tls!.status();
  t.ok(s.handshakeErrors >= 204, `every one counted as a failed handshake (${s.handshakeErrors})`);
  // Sockets are released a tick after close.
  const until = Date.now() + 3000;
  while (tcpSockets() > baseline && Date.now() < until) await wait(20);
  t.ok(tcpSockets() <= baseline, `no socket left behind (${tcpSockets()} vs ${baseline})`);
  const after = await httpsRequest({ port, host: 'live.test', ca: ca.pem });
  t.equal(after.status, 200, 'and the next client is served');
  t.equal(after.body, 'blue\n');
});
