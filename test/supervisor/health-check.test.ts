// One health probe against raw apps on 127.0.0.1: every way an app can answer, or not,
// ends in a verdict within timeoutMs.
import net, { type AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import { checkHealth } from '../../src/supervisor/health-check.js';
import { onRequestHead, startRawUpstream } from '../helpers/raw.js';

/** A raw app that runs `answer` once the probe's request head has arrived. */
async function rawApp(t: Test, answer: (s: net.Socket) => void): Promise<number> {
  return (await startRawUpstream(t, onRequestHead(answer))).port;
}

const OK = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok';

t.test('2xx and 3xx are healthy; 4xx and 5xx are not, with the status', async (t) => {
  for (const [status, ok] of [
    [200, true],
    [204, true],
    [302, true],
    [404, false],
    [503, false],
  ] as const) {
    const port = await rawApp(t, (s) => s.end(`HTTP/1.1 ${status} X\r\nContent-Length: 0\r\n\r\n`));
    const r = await checkHealth(port, '/health', 2000);
    t.equal(r.ok, ok, `${status}: ${ok ? 'healthy' : 'unhealthy'}`);
    t.equal(r.status, status);
    if (!ok) t.equal(r.reason, `HTTP ${status}`);
  }
});

t.test('a closed port is "connection refused"', async (t) => {
  const port = await rawApp(t, (s) => s.end(OK));
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const closed = (server.address() as AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  t.match(await checkHealth(closed, '/', 2000), { ok: false, reason: 'connection refused' });
  t.match(await checkHealth(port, '/', 2000), { ok: true }, 'and a listening one is fine');
});

t.test('an app that never answers, or answers a byte at a time, is unhealthy at timeoutMs', async (t) => {
  const silent = await rawApp(t, () => undefined);
  const r = await checkHealth(silent, '/', 300);
  t.match(r, { ok: false, reason: 'timed out after 300 ms' });
  // The upper bound is loose for a loaded machine: without the timeout there is no verdict at all.
  t.ok(r.ms >= 250 && r.ms < 10_000, `silent: verdict after ${r.ms} ms`);
  // A byte every 50 ms keeps the socket busy; the head still has to arrive within 300 ms.
  let i = 0;
  const dribbling = await rawApp(t, (s) => {
    const timer = setInterval(() => {
      if (s.destroyed || i >= OK.length) return clearInterval(timer);
      s.write(OK[i++]!);
    }, 50);
    s.on('close', () => clearInterval(timer));
  });
  const d = await checkHealth(dribbling, '/', 300);
  t.match(d, { ok: false, reason: 'timed out after 300 ms' });
  t.ok(i < OK.length, `dribbled head: verdict after ${d.ms} ms, before the head was complete (${i} of ${OK.length} bytes)`);
});

t.test('a 101 the probe never asked for is unhealthy at once, not a hang', async (t) => {
  for (const end of [true, false]) {
    const port = await rawApp(t, (s) => {
      const head = 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n';
      if (end) s.end(head);
      else s.write(head);
    });
    // A timeout far beyond what a loaded machine takes: a hang would end in "timed out".
    const r = await checkHealth(port, '/', 60_000);
    t.match(r, { ok: false, status: 101, reason: /HTTP 101/ }, end ? 'socket closed after' : 'socket left open');
    t.ok(r.ms < 30_000, `verdict after ${r.ms} ms`);
  }
});
