// Config reload in a running serve (SIGHUP, `bgproxy reload`): what applies at once, what
// waits for an app's next start, what needs a restart, and that a refused reload changes
// nothing. In-process; the CLI and the signal are in test/cli/reload.test.ts.
import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import t from 'tap';
import { type Config, parseConfig } from '../../src/config.js';
import { configChanges, planReload } from '../../src/reload.js';
import { startWithApps, waitFor } from '../helpers/apps.js';
import { colorHandler, startBackend } from '../helpers/backend.js';
import { request } from '../helpers/http.js';
import { startLoad } from '../helpers/load.js';
import { startProxy } from '../helpers/proxy.js';
import { editConfig } from '../helpers/root.js';

/**
 * One request on a raw keep-alive connection, then idle: resolves with the ms until the proxy
 * closed it, or null if it was still open after `waitMs`.
 */
function idleCloseMs(port: number, waitMs: number): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write('GET / HTTP/1.1\r\nHost: live.test\r\n\r\n'));
    let answeredAt = 0;
    let gaveUp = false;
    s.on('data', () => {
      answeredAt ||= performance.now();
    });
    s.on('error', reject);
    s.on('close', () => resolve(gaveUp ? null : performance.now() - answeredAt));
    setTimeout(() => {
      gaveUp = true;
      s.destroy();
    }, waitMs).unref();
  });
}

t.test('planReload: the changed keys, the app settings that wait for a start, the keys that need a restart', async (t) => {
  const base = (over: Record<string, unknown> = {}): Config => parseConfig({ hosts: { live: ['a.test'] }, app: { start: 'node app.js' }, ...over }, '/srv/x');
  t.same(configChanges({ a: { b: 1, c: [1] } }, { a: { b: 2, c: [1] }, d: 0 }), ['a.b', 'd']);
  t.same(planReload(base(), base()), { changed: [], atNextStart: [], notes: [] });
  const plan = planReload(base(), base({ hosts: { live: ['a.test', 'b.test'] }, holdMs: 100, app: { start: 'node app.js', env: { X: '1' } } }));
  t.same(plan, { changed: ['app.env', 'holdMs', 'hosts.live'], atNextStart: ['app.env'], notes: [] });
  const nginx = (hosts: string[]): Config => base({ mode: 'nginx', listen: '0.0.0.0:80', hosts: { live: hosts } });
  t.match(planReload(nginx(['a.test']), nginx(['a.test', 'b.test'])).notes, [/run bgproxy nginx-config/], 'nginx mode: hosts live in nginx too');
  const refused: Array<[Record<string, unknown>, RegExp]> = [
    [{ listen: '127.0.0.1:81' }, /^config: listen: changed, and only a restart of serve applies it; nothing was reloaded$/],
    [{ colors: { blue: { port: 9000 } } }, /^config: colors\.blue\.port: changed/],
    [{ mode: 'nginx', listen: '0.0.0.0:80' }, /^config: (listen|mode)/],
    [{ timeouts: { upstreamIdleMs: 900 } }, /^config: timeouts\.upstreamIdleMs: changed/],
    [{ limits: { maxHeaderBytes: 32768 } }, /^config: limits\.maxHeaderBytes: changed/],
    [{ app: { start: null } }, /^config: app\.start: removing it changes who runs the apps/],
  ];
  for (const [over, msg] of refused) t.throws(() => planReload(base(), base(over)), { code: 'BG_CONFIG', message: msg }, JSON.stringify(over));
});

t.test('a reload applies hosts, limits and timeouts to the running proxy; keep-alive clients see no error', async (t) => {
  const blue = await startBackend(t, colorHandler('blue'));
  const green = await startBackend(t, colorHandler('green'));
  const p = await startProxy(t, { blue, green, settings: { unknownHost: 'reject', limits: { maxUrlBytes: 1024 } } });
  const load = startLoad({ port: p.port, host: 'live.test', clients: 10, maxMs: 20_000 });
  t.teardown(() => load.stop());
  const longUrl = `/${'x'.repeat(600)}`;
  t.equal((await request(p.port, 'shop.test')).status, 421, 'an unknown host before');
  t.equal((await request(p.port, 'live.test', { path: longUrl })).status, 200);
  t.equal(await idleCloseMs(p.port, 3000), null, 'an idle keep-alive connection is kept (75 s) before');

  editConfig(p.root, (c) => {
    c.hosts.live.push('shop.test');
    c.hosts.next.push('preview.test');
    c.limits = { maxUrlBytes: 512 };
    c.timeouts = { keepAliveMs: 300 };
  });
  const plan = await p.reload();
  t.same(plan.changed, ['hosts.live', 'hosts.next', 'limits.maxUrlBytes', 'timeouts.keepAliveMs']);
  t.same(plan.atNextStart, []);
  t.equal((await request(p.port, 'shop.test')).body.trim(), 'blue', 'the new live host routes to live');
  t.equal((await request(p.port, 'preview.test')).body.trim(), 'green', 'the new next host routes to next');
  t.equal((await request(p.port, 'live.test', { path: longUrl })).status, 414, 'the new URL limit');
  // Node closes an idle connection up to 1 s after keepAliveTimeout.
  const idle = await idleCloseMs(p.port, 3000);
  t.ok(idle !== null, `then closed by the proxy after ${Math.round(idle ?? 0)} ms (keepAliveMs 300)`);
  t.equal(p.bg.config.timeouts.keepAliveMs, 300, 'status and later operations see the new config');

  t.same(await p.reload(), { changed: [], atNextStart: [], notes: [] }, 'reloading the same file changes nothing');
  const stats = await load.stop();
  t.ok(stats.requests > 50, `${stats.requests} requests during the reloads`);
  t.same(stats.errors, [], 'no client error');
  t.same(stats.non2xx, [], 'no non-2xx');
});

t.test('a refused reload changes nothing: bad JSON, a bad value, a key that needs a restart', async (t) => {
  const blue = await startBackend(t, colorHandler('blue'));
  const green = await startBackend(t, colorHandler('green'));
  const p = await startProxy(t, { blue, green, settings: { unknownHost: 'reject' } });
  const before = p.bg.config;
  const file = path.join(p.root, 'bgproxy.json');
  const good = readFileSync(file, 'utf8');

  writeFileSync(file, good.replace('{', '{,'));
  await t.rejects(p.reload(), { code: 'BG_CONFIG', message: /bgproxy\.json is not valid JSON/ }, 'malformed JSON');
  writeFileSync(file, good);
  editConfig(p.root, (c) => {
    c.hosts.live.push('shop.test');
    c.holdMs = 'soon';
  });
  await t.rejects(p.reload(), { code: 'BG_CONFIG', message: /^config: holdMs: must be an integer/ });
  editConfig(p.root, (c) => {
    c.holdMs = 0;
    c.colors.blue.port = green.port + 1;
  });
  await t.rejects(p.reload(), { code: 'BG_CONFIG', message: /^config: colors\.blue\.port: changed, and only a restart of serve applies it; nothing was reloaded$/ });
  t.equal(p.bg.config, before, 'the running config is the one it started with');
  t.equal((await request(p.port, 'shop.test')).status, 421, 'the host added alongside the refused change is not applied');
  t.equal((await request(p.port, 'live.test')).body.trim(), 'blue', 'still serving');
});

t.test('app settings reach a running app at its next start, not before', async (t) => {
  const p = await startWithApps(t);
  const env = async (): Promise<Record<string, string>> => JSON.parse((await request(p.port, 'live.test', { path: '/env' })).body);
  t.notOk('GREETING' in (await env()));
  editConfig(p.root, (c) => {
    c.app.env = { ...c.app.env, GREETING: 'hello from $BG_COLOR' };
  });
  const plan = await p.reload();
  t.same(plan, { changed: ['app.env'], atNextStart: ['app.env'], notes: [] });
  t.notOk('GREETING' in (await env()), 'the running app keeps the environment it started with');
  await p.bg.restartColor('blue');
  await waitFor(async () => (await env()).GREETING !== undefined, 10_000, 'the restarted app');
  t.equal((await env()).GREETING, 'hello from blue', 'the next start uses the reloaded app.env');
});
