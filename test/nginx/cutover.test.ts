// Cutover in nginx mode against a real nginx: switch, refuse, restore.
import http from 'node:http';
import path from 'node:path';
import t from 'tap';
import { readRawRoles } from '../../src/layout/roles.js';
import { type NginxStep, nginxCutover } from '../../src/nginx/cutover.js';
import { type NginxFixture, nginxFixture, request } from '../helpers/nginx.js';

const live = (f: NginxFixture) => request({ port: f.nginx.port, host: 'shop.test', path: '/' });
const next = (f: NginxFixture) => request({ port: f.nginx.port, host: 'next.shop.test', path: '/' });

t.test('cutover moves the live host to the other color and back', async (t) => {
  const f = await nginxFixture(t, t.testdir());
  t.equal((await live(f)).body, 'blue');
  t.equal((await request({ port: f.nginx.port, host: 'www.shop.test', path: '/x' })).body, 'blue');
  t.equal((await next(f)).body, 'green');

  const steps: NginxStep[] = [];
  const r = await nginxCutover(f.config, { onStep: (s) => steps.push(s) });
  t.same(steps, ['health', 'include', 'switch', 'test', 'reload', 'verify', 'old-workers']);
  t.match(r, { live: 'green', was: 'blue', forced: false, oldWorkersLeft: 0 });
  t.type(r.oldWorkersMs, 'number', 'the master was found through the pid file');
  t.comment(`cutover: switched ${r.switchedMs} ms (test ${r.testMs}, reload ${r.reloadMs}, verify ${r.verifyMs}), old workers gone after ${r.oldWorkersMs} ms`);
  t.same(readRawRoles(f.root), { live: 'green', next: 'blue' });
  // A fresh connection lands on a new worker as soon as the cutover returns.
  t.equal((await live(f)).body, 'green');
  t.equal((await next(f)).body, 'blue');

  const back = await nginxCutover(f.config);
  t.match(back, { live: 'blue', was: 'green' });
  t.equal((await live(f)).body, 'blue');
  t.equal((await next(f)).body, 'green');
});

t.test('a failing nginx test restores the links and nginx keeps serving the old color', async (t) => {
  const f = await nginxFixture(t, t.testdir(), {
    nginx: { testCommand: `echo 'nginx: [emerg] unexpected "}" in /simulated/nginx.conf:3' >&2; exit 1` },
  });
  const steps: string[] = [];
  const err = await nginxCutover(f.config, { onStep: (s) => steps.push(s) }).then(
    () => null,
    (e: unknown) => e as { code: string; message: string; detail?: string },
  );
  t.match(err, { code: 'BG_NGINX', message: /unexpected "}" in \/simulated\/nginx\.conf:3/ });
  t.match(err?.detail, /\[emerg\] unexpected "}"/, "nginx's own text is the detail");
  t.match(err?.message, /back to live -> blue \(nginx was not reloaded\)/);
  t.same(steps, ['health', 'include', 'switch', 'restore']);
  t.same(readRawRoles(f.root), { live: 'blue', next: 'green' });
  t.equal((await live(f)).body, 'blue');
  t.equal((await next(f)).body, 'green');
});

t.test('a failing reload restores the links and reloads again', async (t) => {
  const f = await nginxFixture(t, t.testdir());
  const marker = `${f.nginx.prefix}/reloads`;
  // The first reload fails after doing nothing; the restoring one is the real reload.
  const reloadCommand = `if [ -e ${marker} ]; then ${f.nginx.reloadCommand}; else touch ${marker}; echo 'nginx: [error] simulated reload failure' >&2; exit 1; fi`;
  const config = { ...f.config, nginx: { ...f.config.nginx, reloadCommand } };
  await t.rejects(nginxCutover(config), { code: 'BG_NGINX', message: /simulated reload failure.*back to live -> blue and nginx was reloaded/ });
  t.same(readRawRoles(f.root), { live: 'blue', next: 'green' });
  t.equal((await live(f)).body, 'blue');
});

t.test('a verify that never sees the new color restores and reloads', async (t) => {
  // Reload "succeeds" without reloading: nginx keeps serving blue, which verify must notice.
  const f = await nginxFixture(t, t.testdir(), { nginx: { reloadCommand: 'true' } });
  await t.rejects(nginxCutover(f.config, { verifyTimeoutMs: 500 }), {
    code: 'BG_NGINX',
    message: /did not switch to green within 500 ms.*answered "blue".*back to live -> blue and nginx was reloaded/,
  });
  t.same(readRawRoles(f.root), { live: 'blue', next: 'green' });
  t.equal((await live(f)).body, 'blue');
});

t.test('next down: refused BG_UNHEALTHY, nothing changed; --force switches anyway', async (t) => {
  const f = await nginxFixture(t, t.testdir());
  f.green.server.closeAllConnections();
  await new Promise((r) => f.green.server.close(r));
  await t.rejects(nginxCutover(f.config), { code: 'BG_UNHEALTHY', message: /green \(port \d+\) is not healthy: connection refused/ });
  t.same(readRawRoles(f.root), { live: 'blue', next: 'green' });
  t.equal((await live(f)).body, 'blue');

  const r = await nginxCutover(f.config, { force: true });
  t.match(r, { live: 'green', was: 'blue', forced: true });
  t.same(readRawRoles(f.root), { live: 'green', next: 'blue' });
  t.equal((await live(f)).status, 502, 'nginx routes to the (down) green color');
  t.equal((await next(f)).body, 'blue');
});

t.test('the include forwards the proxy headers and websocket upgrades', async (t) => {
  const f = await nginxFixture(t, t.testdir());
  const seen = JSON.parse((await request({ port: f.nginx.port, host: 'shop.test', path: '/headers' })).body) as Record<string, string>;
  t.match(seen, {
    host: 'shop.test',
    'x-real-ip': '127.0.0.1',
    'x-forwarded-for': '127.0.0.1',
    'x-forwarded-proto': 'http',
    'x-forwarded-host': 'shop.test',
  });
  t.notOk('connection' in seen, 'no Connection: close to the app, so nginx can keep the connection');
  t.notOk('upgrade' in seen, 'no Upgrade header on a plain request');

  const upgraded = await new Promise<string>((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1',
      port: f.nginx.port,
      headers: { host: 'next.shop.test', connection: 'Upgrade', upgrade: 'websocket' },
    });
    req.on('upgrade', (res, socket, head) => {
      let data = head.toString();
      socket.on('data', (c: Buffer) => {
        data += c.toString();
      });
      socket.on('end', () => resolve(`${res.statusCode} ${data}`));
    });
    req.on('response', (res) => reject(new Error(`no upgrade: HTTP ${res.statusCode}`)));
    req.on('error', reject);
    req.end();
  });
  t.equal(upgraded, '101 green');
});

t.test('nginx keeps connections to the app alive (nginx.upstreamKeepalive), and not with 0', async (t) => {
  for (const keepalive of [16, 0]) {
    // One prefix per nginx: in a shared one, the first teardown took the second master for its
    // own and SIGKILLed it, which left that master's workers running, orphaned.
    const f = await nginxFixture(t, path.join(t.testdir(), `keepalive-${keepalive}`), { nginx: { upstreamKeepalive: keepalive } });
    const before = f.blue.connections;
    // One at a time: one worker's idle connection is reused; two workers make at most two.
    for (let i = 0; i < 20; i++) t.equal((await live(f)).body, 'blue');
    const opened = f.blue.connections - before;
    if (keepalive > 0) t.ok(opened <= 2, `20 requests over ${opened} app connection(s)`);
    else t.equal(opened, 20, 'upstreamKeepalive 0: a connection per request');
  }
});
