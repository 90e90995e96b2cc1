// Canary cutover: a sticky share of live traffic to next (cookie, else client address),
// the cookie kept from the app, completed by cutover, ended by rollback or a bad 5xx rate.
import http from 'node:http';
import net from 'node:net';
import t from 'tap';
import WebSocket from 'ws';
import { loadConfig } from '../../src/config.js';
import { readHistory } from '../../src/deploy/history.js';
import { silentLogger } from '../../src/log.js';
import { startServer } from '../../src/serve.js';
import { colorHandler, startBackend } from '../helpers/backend.js';
import { request } from '../helpers/http.js';
import { startProxy } from '../helpers/proxy.js';

const COOKIE = /^bgproxy_canary=([a-z0-9]+-\d+); Path=\/; Max-Age=604800; HttpOnly; SameSite=Lax$/;

t.test('10% over 2,000 clients lands within tolerance; each client sticks to its color', async (t) => {
  const blue = await startBackend(t, colorHandler('blue'));
  const green = await startBackend(t, colorHandler('green'));
  const p = await startProxy(t, { blue, green, settings: { trustProxy: ['127.0.0.1'] } });
  const started = await p.bg.canary(10);
  t.match(started.canary, { color: 'green', percent: 10 });

  // 2,000 clients without cookies, each at its own address (behind a trusted proxy).
  const agent = new http.Agent({ keepAlive: true, maxSockets: 20 });
  t.teardown(() => agent.destroy());
  const addr = (i: number): string => `10.${(i >> 8) & 255}.${i & 255}.7`;
  const replies = await Promise.all(
    Array.from({ length: 2000 }, (_, i) => request(p.port, 'live.test', { agent, headers: { 'x-forwarded-for': addr(i) } })),
  );
  t.same([...new Set(replies.map((r) => r.status))], [200]);
  const toGreen = replies.filter((r) => r.body === 'green\n').length;
  t.ok(toGreen >= 150 && toGreen <= 250, `${toGreen} of 2,000 (10% = 200, tolerance ±50) went to the canary`);
  const cookies = replies.map((r) => String(r.headers['set-cookie']?.[0]));
  t.ok(cookies.every((c) => COOKIE.test(c)), 'every new client got the cookie');

  // The same address without a cookie: the same color, every time.
  for (const i of [0, 1, 2, 3, 4]) {
    const again = await Promise.all(Array.from({ length: 5 }, () => request(p.port, 'live.test', { agent, headers: { 'x-forwarded-for': addr(i) } })));
    t.same([...new Set(again.map((r) => r.body))], [replies[i]!.body], `address ${addr(i)} sticks`);
  }
  // A client with the cookie keeps its color from any address (a phone changing networks).
  const canaryIdx = replies.findIndex((r) => r.body === 'green\n');
  const liveIdx = replies.findIndex((r) => r.body === 'blue\n');
  for (const [idx, color] of [[canaryIdx, 'green\n'], [liveIdx, 'blue\n']] as const) {
    const cookie = COOKIE.exec(cookies[idx]!)![1]!;
    const moved = await Promise.all(
      Array.from({ length: 10 }, (_, k) => request(p.port, 'live.test', { agent, headers: { cookie: `bgproxy_canary=${cookie}`, 'x-forwarded-for': `192.0.2.${k}` } })),
    );
    t.same([...new Set(moved.map((r) => r.body))], [color], `the cookie keeps ${color.trim()}`);
    t.ok(moved.every((r) => r.headers['set-cookie'] === undefined), 'and is not set again');
  }

  // The next host is not split.
  t.equal((await request(p.port, 'next.live.test')).body, 'green\n');
  const s = (await p.bg.status()).traffic!.canary!;
  t.equal(s.percent, 10);
  // The canary's first answers, 5 repeats per address on green, 10 cookie requests, 1 next-host request.
  const expected = toGreen + countGreen(replies.slice(0, 5)) * 5 + 10 + 1;
  t.equal(s.colors.green.requests, expected, 'status counts the requests each color answered');
  t.equal(s.colors.blue.requests, 2000 - toGreen + (5 - countGreen(replies.slice(0, 5))) * 5 + 10);
  t.equal(s.colors.blue.errorRate, 0);
  t.comment(`canary 10%: ${toGreen} of 2,000 clients to green`);
});

function countGreen(rs: Array<{ body: string }>): number {
  return rs.filter((r) => r.body === 'green\n').length;
}

t.test('the cookie never reaches the app; other cookies do; a stale one is replaced', async (t) => {
  const blue = await startBackend(t, colorHandler('blue'));
  const green = await startBackend(t, colorHandler('green'));
  const p = await startProxy(t, { blue, green });
  const { canary } = await p.bg.canary(50);
  const first = await request(p.port, 'live.test', { path: '/echo' });
  const mine = COOKIE.exec(String(first.headers['set-cookie']))![1]!;
  const echo = async (cookie: string) => {
    const r = await request(p.port, 'live.test', { path: '/echo', headers: { cookie } });
    return { headers: r.headers, sent: (JSON.parse(r.body) as { headers: Record<string, string> }).headers.cookie };
  };
  t.equal((await echo(`bgproxy_canary=${mine}`)).sent, undefined, 'alone: no Cookie header at all');
  t.equal((await echo(`a=1; bgproxy_canary=${mine}; b=2`)).sent, 'a=1; b=2', 'in the middle');
  t.equal((await echo(`a=1; bgproxy_canary=${mine}`)).sent, 'a=1', 'at the end');
  t.equal((await echo(`bgproxy_canary=${mine};b=2`)).sent, 'b=2', 'at the start');
  t.equal((await echo('x_bgproxy_canary=1; a=2')).sent, 'x_bgproxy_canary=1; a=2', 'a cookie whose name only ends the same is the app’s');
  const stale = await echo('bgproxy_canary=old00-5; a=1');
  t.equal(stale.sent, 'a=1', 'a stale cookie is stripped too');
  t.match(String(stale.headers['set-cookie']), COOKIE, 'and replaced');
  t.equal(canary.color, 'green');
  // Raising the share keeps the clients already on the canary there (same id, same buckets).
  await p.bg.canary(90);
  const after = await request(p.port, 'live.test', { headers: { cookie: `bgproxy_canary=${mine}` } });
  t.equal(after.headers['set-cookie'], undefined, 'the cookie is still valid at a new share');
  if (first.body.includes('green')) t.equal(after.body, 'green\n');
});

t.test('a websocket during a canary: the 101 sets the cookie, and the cookie picks the color and never reaches the app', async (t) => {
  const blue = await startBackend(t, colorHandler('blue'), { websocket: true });
  const green = await startBackend(t, colorHandler('green'), { websocket: true });
  // Which app each handshake reached, and the Cookie header it saw.
  const upgrades: Array<{ color: string; cookie: string | undefined }> = [];
  for (const [color, b] of [['blue', blue], ['green', green]] as const) {
    b.server.on('upgrade', (req: http.IncomingMessage) => upgrades.push({ color, cookie: req.headers.cookie }));
  }
  const p = await startProxy(t, { blue, green, settings: { trustProxy: ['127.0.0.1'] } });
  await p.bg.canary(50);
  const handshake = async (headers: Record<string, string>): Promise<{ setCookie: string | undefined; echo: string }> => {
    const ws = new WebSocket(`ws://127.0.0.1:${p.port}/`, { headers: { host: 'live.test', ...headers } });
    t.teardown(() => ws.terminate());
    let res: http.IncomingMessage | undefined;
    ws.once('upgrade', (r) => {
      res = r;
    });
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    const echo = new Promise<string>((resolve) => ws.once('message', (m) => resolve(m.toString())));
    ws.send('hi');
    const setCookie = res?.headers['set-cookie']?.[0];
    return { setCookie, echo: await echo };
  };

  // Clients without a cookie: each 101 carries it, and its bucket says where the socket went.
  const first = await Promise.all(Array.from({ length: 12 }, (_, i) => handshake({ 'x-forwarded-for': `10.1.0.${i}` })));
  t.same([...new Set(first.map((r) => r.echo))], ['echo:hi'], 'every websocket works through the canary');
  t.ok(first.every((r) => COOKIE.test(String(r.setCookie))), 'every 101 sets the canary cookie');
  const colors = new Set(upgrades.map((u) => u.color));
  t.same([...colors].sort(), ['blue', 'green'], '50%: 12 clients reached both colors');
  // The cookie alone decides, from any address, and is stripped before the app.
  const seenBefore = upgrades.length;
  for (let i = 0; i < first.length; i++) {
    const cookie = COOKIE.exec(first[i]!.setCookie!)![1]!;
    const again = await handshake({ cookie: `a=1; bgproxy_canary=${cookie}`, 'x-forwarded-for': '192.0.2.1' });
    t.equal(again.setCookie, undefined, 'a client with the cookie is not given it again');
    t.same(upgrades[seenBefore + i], { color: upgrades[i]!.color, cookie: 'a=1' }, `client ${i} keeps its color; the app sees only its own cookie`);
  }
  // Without a canary a 101 is relayed as the app sent it: no cookie.
  await p.bg.rollback();
  t.equal((await handshake({})).setCookie, undefined, 'no canary, no cookie');
});

t.test('the cookie goes into the 101 head exactly, whether the app sends its first bytes with the head or splits the head', async (t) => {
  // Raw apps: one writes the 101 and its first frame bytes in one write, one writes its head a byte at a time.
  const rawApp = async (send: (s: net.Socket, head: string) => void): Promise<number> => {
    const server = net.createServer((s) => {
      s.once('data', (d) => {
        // Health checks get a plain answer; the upgrade its 101.
        if (!/^upgrade: x-test\r$/im.test(d.toString('latin1'))) return s.end('HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
        send(s, 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: x-test\r\nConnection: Upgrade\r\n\r\n');
      });
      s.on('error', () => s.destroy());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.teardown(() => new Promise((resolve) => server.close(resolve)));
    return (server.address() as net.AddressInfo).port;
  };
  const together = (s: net.Socket, head: string): void => {
    s.end(`${head}first-bytes`);
  };
  const dribbled = (s: net.Socket, head: string): void => {
    let i = 0;
    const next = (): void => {
      if (i < head.length) s.write(head[i++]!, () => setTimeout(next, 1));
      else s.end('first-bytes');
    };
    next();
  };
  for (const [name, send] of [['together', together], ['dribbled', dribbled]] as const) {
    // Both colors the same kind of app: whichever the canary picks.
    const p = await startProxy(t, { blue: { port: await rawApp(send) }, green: { port: await rawApp(send) } });
    await p.bg.canary(50);
    const c = net.connect(p.port, '127.0.0.1');
    t.teardown(() => c.destroy());
    c.write('GET / HTTP/1.1\r\nHost: live.test\r\nConnection: Upgrade\r\nUpgrade: x-test\r\n\r\n');
    const got = await new Promise<string>((resolve) => {
      let all = '';
      c.on('data', (d) => {
        all += d.toString('latin1');
      });
      c.on('close', () => resolve(all));
    });
    t.match(
      got,
      /^HTTP\/1\.1 101 Switching Protocols\r\nUpgrade: x-test\r\nConnection: Upgrade\r\nset-cookie: bgproxy_canary=[a-z0-9]+-\d+; Path=\/; Max-Age=604800; HttpOnly; SameSite=Lax\r\nX-Request-Id: [0-9a-f]{32}\r\n\r\nfirst-bytes$/,
      `${name}: the app's head, the cookie, the request id, the blank line, then the app's bytes untouched`,
    );
  }
});

t.test('cutover completes a canary, rollback ends one, deploy is refused meanwhile; history has each', async (t) => {
  const blue = await startBackend(t, colorHandler('blue'));
  const green = await startBackend(t, colorHandler('green'));
  const p = await startProxy(t, { blue, green });
  await p.bg.canary(25);
  await t.rejects(p.bg.deploy({}), { code: 'BG_STATE', message: /a canary sends live traffic to green/ });
  const cut = await p.bg.cutover();
  t.equal(cut.live, 'green');
  let s = await p.bg.status();
  t.equal(s.traffic!.canary, null, 'completed');
  t.match(s.traffic!.lastCanary, { color: 'green', how: 'completed by cutover' });
  const many = await Promise.all(Array.from({ length: 20 }, () => request(p.port, 'live.test')));
  t.same([...new Set(many.map((r) => r.body))], ['green\n'], 'everything on the new live color');

  await p.bg.canary(50);
  t.equal((await p.bg.status()).traffic!.canary!.color, 'blue', 'a canary goes to next, now blue');
  const back = await p.bg.rollback();
  t.match(back, { live: 'green', was: 'blue', canaryEnded: true });
  s = await p.bg.status();
  t.equal(s.live, 'green', 'rollback during a canary leaves live as it was');
  t.equal(s.traffic!.canary, null);
  const after = await Promise.all(Array.from({ length: 20 }, (_, i) => request(p.port, 'live.test', { headers: { 'x-forwarded-for': `10.0.0.${i}` } })));
  t.same([...new Set(after.map((r) => r.body))], ['green\n'], 'all live traffic back on live');
  await t.rejects(p.bg.canary(0), { code: 'BG_USAGE' });
  await t.rejects(p.bg.canary(100), { code: 'BG_USAGE' });
  const h = (await readHistory(p.root)).map((e) => `${e.action}:${e.color}`);
  t.same(h, ['canary:green', 'cutover:green', 'canary:blue', 'rollback:green']);
});

t.test('a canary survives a restart of serve with the same cookie id', async (t) => {
  const blue = await startBackend(t, colorHandler('blue'));
  const green = await startBackend(t, colorHandler('green'));
  const p = await startProxy(t, { blue, green });
  await p.bg.canary(30);
  const first = await request(p.port, 'live.test');
  const cookie = COOKIE.exec(String(first.headers['set-cookie']))![1]!;
  await p.stop();
  const again = await startServer({ config: loadConfig(p.root), logger: silentLogger(), accessLog: false });
  t.teardown(() => again.stop());
  const port = Number(again.listen!.split(':').pop());
  t.match((await again.bg.status()).traffic!.canary, { color: 'green', percent: 30 });
  const r = await request(port, 'live.test', { headers: { cookie: `bgproxy_canary=${cookie}` } });
  t.equal(r.body, first.body, 'the client keeps its color across the restart');
  t.equal(r.headers['set-cookie'], undefined);
});

t.test('the watch ends a canary whose 5xx rate is bad, and marks the color failed', async (t) => {
  const blue = await startBackend(t, colorHandler('blue'));
  const green = await startBackend(t, (req, res) => {
    if (req.url === '/boom') {
      res.statusCode = 500;
      res.end('boom\n');
    } else colorHandler('green')(req, res);
  });
  const p = await startProxy(t, { blue, green, settings: { trustProxy: ['127.0.0.1'], watch: { minRequests: 10, maxErrorRate: 0.05 } } });
  const started = await p.bg.canary(50, { watchMs: 10_000 });
  t.equal(started.canary.watch?.state, 'watching');
  const ended = new Promise<void>((resolve) => {
    const poll = setInterval(async () => {
      if ((await p.bg.status()).traffic!.canary === null) {
        clearInterval(poll);
        resolve();
      }
    }, 50);
    t.teardown(() => clearInterval(poll));
  });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 10 });
  t.teardown(() => agent.destroy());
  await Promise.all(Array.from({ length: 100 }, (_, i) => request(p.port, 'live.test', { path: '/boom', agent, headers: { 'x-forwarded-for': `10.1.0.${i}` } })));
  await ended;
  const s = await p.bg.status();
  t.match(s.traffic!.lastCanary, { color: 'green', how: /^aborted: 5xx rate/ });
  t.match(s.colors.green.reason, /canary aborted/);
  const after = await Promise.all(Array.from({ length: 20 }, (_, i) => request(p.port, 'live.test', { path: '/boom', headers: { 'x-forwarded-for': `10.2.0.${i}` } })));
  t.same([...new Set(after.map((r) => r.status))], [200], 'all on blue again');
  await new Promise((r) => setTimeout(r, 100));
  t.ok((await readHistory(p.root)).some((e) => e.action === 'canary-abort'));
});
