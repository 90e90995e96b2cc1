// Limits: oversized header blocks, too many headers, huge URLs. Refused before any
// upstream contact, with memory flat over many repeats.
import t from 'tap';
import { colorHandler, startBackend } from '../helpers/backend.js';
import { request } from '../helpers/http.js';
import { heapMb } from '../helpers/measure.js';
import { startProxy } from '../helpers/proxy.js';
import { rawExchange, startCountingUpstream, statusOf } from '../helpers/raw.js';

const HUGE_HEADER = `GET / HTTP/1.1\r\nHost: live.test\r\nX-Big: ${'a'.repeat(20_000)}\r\nConnection: close\r\n\r\n`;
const MANY_HEADERS = `GET / HTTP/1.1\r\nHost: live.test\r\n${Array.from({ length: 2100 }, (_, i) => `x${i}: 1\r\n`).join('')}Connection: close\r\n\r\n`;
const SOME_HEADERS = `GET / HTTP/1.1\r\nHost: live.test\r\n${Array.from({ length: 150 }, (_, i) => `x${i}: 1\r\n`).join('')}Connection: close\r\n\r\n`;
const HUGE_URL = `GET /${'u'.repeat(20_000)} HTTP/1.1\r\nHost: live.test\r\nConnection: close\r\n\r\n`;
const LONG_URL = `GET /${'u'.repeat(9_000)} HTTP/1.1\r\nHost: live.test\r\nConnection: close\r\n\r\n`;

t.test('oversized requests are refused without upstream contact', async (t) => {
  const blue = await startCountingUpstream(t);
  const green = await startCountingUpstream(t);
  const p = await startProxy(t, { blue, green });
  const cases: Array<[string, string, number[]]> = [
    ['a 20 kB header', HUGE_HEADER, [431]],
    ['2,100 headers', MANY_HEADERS, [431]],
    ['150 headers', SOME_HEADERS, [431]],
    ['a 20 kB URL', HUGE_URL, [414, 431]],
    ['a 9 kB URL', LONG_URL, [414]],
  ];
  for (const [name, bytes, statuses] of cases) {
    const status = statusOf(await rawExchange(p.port, bytes));
    t.ok(statuses.includes(status), `${name} -> ${statuses.join('/')} (got ${status})`);
    t.equal(blue.requests.length + blue.parseErrors, 0, `${name}: no upstream contact`);
    t.equal((await request(p.port, 'live.test')).body, 'ok', 'the proxy still serves a normal request');
    blue.requests.length = 0;
  }
  const normal = `GET / HTTP/1.1\r\nHost: live.test\r\n${Array.from({ length: 60 }, (_, i) => `x${i}: 1\r\n`).join('')}Connection: close\r\n\r\n`;
  t.equal(statusOf(await rawExchange(p.port, normal)), 200, '60 headers still pass');
});

t.test('memory stays flat over 1,000 oversized requests', async (t) => {
  const blue = await startCountingUpstream(t);
  const green = await startCountingUpstream(t);
  const p = await startProxy(t, { blue, green });
  const all = [HUGE_HEADER, MANY_HEADERS, HUGE_URL, LONG_URL];
  const round = async (n: number): Promise<void> => {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < n) {
        const i = next++;
        await rawExchange(p.port, all[i % all.length]!);
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
  };
  await round(200); // warm up pools and JIT
  const before = heapMb();
  await round(1000);
  const after = heapMb();
  t.comment(`heap ${before} MB -> ${after} MB over 1,000 oversized requests`);
  t.ok(after - before < 10, `heap grew by less than 10 MB (${before} -> ${after})`);
  t.equal(blue.requests.length + blue.parseErrors, 0, 'no upstream contact');
  t.equal((await request(p.port, 'live.test')).body, 'ok', 'the proxy still serves a normal request');
});

t.test('config.limits are honoured: a lower header count and URL length', async (t) => {
  const blue = await startBackend(t, colorHandler('blue'));
  const green = await startBackend(t, colorHandler('green'));
  const p = await startProxy(t, { blue, green, settings: { limits: { maxHeaders: 20, maxUrlBytes: 1000 } } });
  const headers: Record<string, string> = {};
  for (let i = 0; i < 25; i++) headers[`x-h${i}`] = 'v';
  t.equal((await request(p.port, 'live.test', { headers })).status, 431);
  t.equal((await request(p.port, 'live.test', { path: `/${'a'.repeat(1200)}` })).status, 414);
  t.equal((await request(p.port, 'live.test', { path: `/${'a'.repeat(900)}` })).status, 200);
  t.equal(blue.seen.length, 1, 'only the request within the limits reached the app');
});
