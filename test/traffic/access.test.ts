// access.live / access.next: basic auth and allow lists, through a real bgproxy on real sockets.
import net from 'node:net';
import t from 'tap';
import { loadConfig, parseConfig } from '../../src/config.js';
import { hashPassword, parseHash, passwordChecks, verifyPassword } from '../../src/traffic/passwd.js';
import { colorHandler, startBackend } from '../helpers/backend.js';
import { request } from '../helpers/http.js';
import { startProxy } from '../helpers/proxy.js';
import { editConfig } from '../helpers/root.js';

const basic = (user: string, pw: string): string => `Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}`;

t.test('passwd hashes: scrypt, salted, verified, never the password', async (t) => {
  const a = hashPassword('s3cret pass');
  const b = hashPassword('s3cret pass');
  t.match(a, /^\$scrypt\$ln=14,r=8,p=1\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/);
  t.not(a, b, 'a fresh salt each time');
  t.notMatch(a, /s3cret/);
  const h = parseHash(a)!;
  t.equal(await verifyPassword('s3cret pass', h), true);
  t.equal(await verifyPassword('s3cret pasS', h), false);
  t.equal(await verifyPassword('', h), false);
  t.equal(parseHash('s3cret pass'), null, 'a plain password is not a hash');
  t.equal(parseHash('$scrypt$ln=30,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'), null, 'a cost that would take gigabytes is refused');
});

t.test('config: access keys are validated, naming the key', async (t) => {
  const base = { hosts: { live: ['a.test'], next: ['n.test'] } };
  const bad = (access: unknown, extra: Record<string, unknown> = {}) => () => parseConfig({ ...base, ...extra, access }, '/tmp/x');
  t.throws(bad({ next: { basicAuth: { user: 'team', hash: 'hunter2' } } }), { code: 'BG_CONFIG', message: /access\.next\.basicAuth\.hash: not a hash made by `bgproxy passwd`/ });
  t.throws(bad({ next: { allow: ['10.0.0.0/33'] } }), { message: /access\.next\.allow\[0\]: not an address or CIDR/ });
  t.throws(bad({ next: { allow: [] } }), { message: /access\.next\.allow: an empty list/ });
  t.throws(bad({ live: { basicAuth: { user: 'a:b', hash: hashPassword('x') } } }), { message: /access\.live\.basicAuth\.user: must not contain ":"/ });
  t.throws(bad({ next: { deny: ['1.2.3.4'] } }), { message: /access\.next\.deny: unknown key/ });
  t.throws(bad({ next: { basicAuth: { user: 'u', hash: hashPassword('x') } } }, { mode: 'nginx', listen: '80' }), { message: /access\.next\.basicAuth: nginx mode cannot check it/ });
  const ok = parseConfig({ ...base, access: { next: { allow: ['203.0.113.0/24', '2001:db8::/32', '198.51.100.7'] } } }, '/tmp/x');
  t.same(ok.access, { live: null, next: { allow: ['203.0.113.0/24', '2001:db8::/32', '198.51.100.7'], basicAuth: null } });
  t.same(parseConfig(base, '/tmp/x').access, { live: null, next: null });
});

t.test('basic auth on next: right, wrong, missing and malformed credentials; never forwarded', async (t) => {
  const blue = await startBackend(t, colorHandler('blue'));
  const green = await startBackend(t, colorHandler('green'));
  const hash = hashPassword('correct horse');
  const p = await startProxy(t, { blue, green, settings: { access: { next: { basicAuth: { user: 'team', hash } } } } });
  const next = (authorization?: string, path = '/echo') =>
    request(p.port, 'next.live.test', { path, headers: authorization === undefined ? {} : { authorization } });

  const missing = await next();
  t.equal(missing.status, 401);
  t.equal(missing.headers['www-authenticate'], 'Basic realm="bgproxy next", charset="UTF-8"');
  for (const [what, value] of [
    ['wrong password', basic('team', 'correct hors')],
    ['wrong user', basic('tea', 'correct horse')],
    ['empty', 'Basic '],
    ['not base64', 'Basic !!!!'],
    ['no colon', `Basic ${Buffer.from('teamcorrect horse').toString('base64')}`],
    ['another scheme', 'Bearer abc'],
    ['two credentials', `${basic('team', 'correct horse')}, ${basic('team', 'correct horse')}`],
  ] as const) {
    const r = await next(value);
    t.equal(r.status, 401, `${what}: 401`);
    t.ok(r.headers['www-authenticate'], `${what}: asks for credentials`);
  }
  t.equal(green.seen.length, 0, 'nothing refused reached the app');

  const right = await next(basic('team', 'correct horse'));
  t.equal(right.status, 200);
  const echoed = JSON.parse(right.body) as { headers: Record<string, string> };
  t.equal(echoed.headers.authorization, undefined, 'the credentials were stripped before the app');
  t.equal(green.seen.at(-1)?.headers.authorization, undefined);
  // Remembered: the second request does not wait for scrypt again, and still strips.
  const again = await next(`basic   ${Buffer.from('team:correct horse').toString('base64')}`);
  t.equal(again.status, 200, 'the scheme is case-insensitive');
  t.equal(green.seen.at(-1)?.headers.authorization, undefined);

  // The live host has no rule: open, and an app's own Authorization passes through.
  const live = await request(p.port, 'live.test', { path: '/echo', headers: { authorization: 'Bearer app-token' } });
  t.equal(live.status, 200);
  t.equal((JSON.parse(live.body) as { headers: Record<string, string> }).headers.authorization, 'Bearer app-token');

  // A websocket upgrade without credentials is refused the same way, before the app.
  const raw = await new Promise<string>((resolve, reject) => {
    const s = net.connect(p.port, '127.0.0.1', () =>
      s.write('GET / HTTP/1.1\r\nHost: next.live.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n'),
    );
    let out = '';
    s.on('data', (d) => (out += d.toString()));
    s.on('end', () => resolve(out));
    s.on('error', reject);
  });
  t.match(raw, /^HTTP\/1\.1 401 /);
  t.match(raw, /WWW-Authenticate: Basic/i);
});

t.test('a wrong user costs a full scrypt check, like a wrong password', async (t) => {
  const blue = await startBackend(t, colorHandler('blue'));
  const green = await startBackend(t, colorHandler('green'));
  const hash = hashPassword('pw');
  const p = await startProxy(t, { blue, green, settings: { access: { next: { basicAuth: { user: 'team', hash } } } } });
  // Counted, not timed: a timing comparison on a loaded 2-core machine measures the machine.
  const checksFor = async (auth: string, status: number): Promise<{ checks: number; body: string }> => {
    const before = passwordChecks();
    const r = await request(p.port, 'next.live.test', { headers: { authorization: auth } });
    t.equal(r.status, status);
    return { checks: passwordChecks() - before, body: r.body };
  };
  const wrongUser = await checksFor(basic('someone', 'pw'), 401);
  const wrongPassword = await checksFor(basic('team', 'p'), 401);
  t.equal(wrongUser.checks, 1, 'a wrong user runs scrypt once');
  t.equal(wrongPassword.checks, 1, 'a wrong password runs scrypt once');
  t.equal(wrongUser.body, wrongPassword.body, 'the two refusals read the same');
  t.equal((await checksFor(basic('team', 'pw'), 200)).checks, 1, 'a right credential is checked once');
  t.equal((await checksFor(basic('team', 'pw'), 200)).checks, 0, 'then remembered');
  t.equal((await checksFor(basic('someone', 'pw'), 401)).checks, 1, 'a refused one is never remembered');
});

t.test('allow list: the socket address, or with trustProxy the forwarded one', async (t) => {
  const blue = await startBackend(t, colorHandler('blue'));
  const green = await startBackend(t, colorHandler('green'));
  const viaXff = (port: number, xff?: string) =>
    request(port, 'next.live.test', { headers: xff === undefined ? {} : { 'x-forwarded-for': xff } });

  t.test('without trustProxy, X-Forwarded-For is the client talking', async (t) => {
    const p = await startProxy(t, { blue, green, settings: { access: { next: { allow: ['10.9.9.0/24'] } } } });
    t.equal((await viaXff(p.port)).status, 403);
    t.equal((await viaXff(p.port, '10.9.9.5')).status, 403, 'a forged X-Forwarded-For does not get in');
    t.equal((await request(p.port, 'live.test')).status, 200, 'live stays open');
  });
  t.test('the socket address itself', async (t) => {
    const p = await startProxy(t, { blue, green, settings: { access: { next: { allow: ['127.0.0.0/8', '::1'] } } } });
    const r = await viaXff(p.port, '203.0.113.9');
    t.equal(r.status, 200);
    t.equal(r.body, 'green\n');
  });
  t.test('behind a trusted proxy: the nearest address it did not add', async (t) => {
    const p = await startProxy(t, { blue, green, settings: { trustProxy: ['127.0.0.1'], access: { next: { allow: ['10.9.9.0/24'] } } } });
    t.equal((await viaXff(p.port, '10.9.9.5')).status, 200);
    t.equal((await viaXff(p.port, '10.9.8.5')).status, 403);
    t.equal((await viaXff(p.port, '10.9.9.5, 203.0.113.9')).status, 403, 'the client cannot claim an address left of its own');
    t.equal((await viaXff(p.port, '203.0.113.9, 10.9.9.5, 127.0.0.1')).status, 200, 'trusted hops are skipped');
    t.equal((await viaXff(p.port, 'not-an-ip')).status, 403);
    t.equal((await viaXff(p.port)).status, 403, 'no header: the proxy itself is the client');
  });
});

t.test('bgproxy reload applies access rules to the running proxy', async (t) => {
  const blue = await startBackend(t, colorHandler('blue'));
  const green = await startBackend(t, colorHandler('green'));
  const p = await startProxy(t, { blue, green });
  t.equal((await request(p.port, 'live.test')).status, 200);
  editConfig(p.root, (c) => {
    c.access = { live: { basicAuth: { user: 'staff', hash: hashPassword('pw') } } };
  });
  const plan = await p.reload();
  t.same(plan.changed, ['access.live']);
  t.equal((await request(p.port, 'live.test')).status, 401);
  t.equal((await request(p.port, 'live.test', { headers: { authorization: basic('staff', 'pw') } })).status, 200);
  t.equal((await request(p.port, 'next.live.test')).status, 200, 'next has no rule');
  const status = await p.bg.status();
  t.same(status.traffic?.access, { live: { allow: null, basicAuthUser: 'staff' }, next: null }, 'status shows the rule, not the hash');
  t.notMatch(JSON.stringify(status), /scrypt/);
  editConfig(p.root, (c) => {
    delete c.access;
  });
  await p.reload();
  t.equal((await request(p.port, 'live.test')).status, 200, 'removed again');
  t.equal(loadConfig(p.root).access.live, null);
});
