// nginx mode on a new root (issue 15), as a new user goes: `bgproxy init --mode nginx`, the
// output of `bgproxy nginx-config` into a real nginx before any deploy, then the first deploy and
// the first cutover. nginx must load the site file at once (each color without a release answers
// 503 from a placeholder include, the marker still answers), and no request may fail on the way.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import t, { type Test } from 'tap';
import { loadConfig } from '../../src/config.js';
import { releasePath } from '../../src/deploy/release.js';
import { writeColorFiles } from '../../src/nginx/color-files.js';
import { includeFile, renderInclude } from '../../src/nginx/conf.js';
import { WorkRepo } from '../deploy/git-repos.js';
import { FIXTURE_APP, waitFor } from '../helpers/apps.js';
import { cli, serve } from '../helpers/cli.js';
import { type NginxInstance, type Reply, request, startBackend, startLoad, startNginx } from '../helpers/nginx.js';
import { freePort } from '../helpers/ports.js';
import { editConfig, makeRoot, type RawConfig, tempDir } from '../helpers/root.js';

// Spelled out rather than imported: the text people see is part of the contract.
const PLACEHOLDER = { blue: 'No release is deployed in blue yet.\n', green: 'No release is deployed in green yet.\n' };
const MARKER = '/.well-known/bgproxy-color';

interface FreshRoot {
  root: string;
  nginx: NginxInstance;
  init: Awaited<ReturnType<typeof cli>>;
  nginxConfig: Awaited<ReturnType<typeof cli>>;
}

/**
 * `bgproxy init --mode nginx` with `flags`, bgproxy.json edited for this test's nginx (step 2 of
 * nginx-compat/README.md) and by `edit`, then nginx started on the output of `bgproxy nginx-config`.
 */
async function freshRoot(t: Test, flags: string[], edit: (c: RawConfig) => void = () => {}): Promise<FreshRoot> {
  const dir = tempDir(t);
  const root = path.join(dir, 'root');
  let init = { code: -1, stdout: '', stderr: '' };
  let nginxConfig = init;
  const { nginx } = await startNginx(t, async (s) => {
    init = await cli(['init', '--root', root, '--mode', 'nginx', '--host', 'shop.test', '--listen', `127.0.0.1:${s.port}`, ...flags]);
    if (init.code !== 0) throw new Error(`init failed: ${init.stderr}`);
    editConfig(root, (c) => {
      c.nginx = { testCommand: s.testCommand, reloadCommand: s.reloadCommand, pidFile: s.pidFile };
      edit(c);
    });
    nginxConfig = await cli(['nginx-config', '--root', root]);
    if (nginxConfig.code !== 0) throw new Error(`nginx-config failed: ${nginxConfig.stderr}`);
    return { config: loadConfig(root), site: nginxConfig.stdout };
  });
  return { root, nginx, init, nginxConfig };
}

const get = (n: NginxInstance, host: string, p = '/'): Promise<Reply> => request({ port: n.port, host, path: p });

t.test('before any deploy nginx loads the site file: each color answers 503 from its placeholder, the marker answers', async (t) => {
  const ports = [String(await freePort()), String(await freePort())] as const;
  const f = await freshRoot(t, ['--blue-port', ports[0], '--green-port', ports[1]]);
  t.match(f.init.stdout, /blue and green hold no release yet: nginx answers 503 there until their first deploy/);
  t.equal(f.nginxConfig.stderr, '', 'init already wrote every file the site file includes');
  const test = await execa('/bin/sh', ['-c', f.nginx.testCommand], { reject: false, all: true });
  t.equal(test.exitCode, 0, `nginx -t: ${test.all}`);

  t.same(await get(f.nginx, 'shop.test'), { status: 503, body: PLACEHOLDER.blue });
  t.same(await get(f.nginx, 'shop.test', '/any/path?q=1'), { status: 503, body: PLACEHOLDER.blue });
  t.same(await get(f.nginx, 'next.shop.test'), { status: 503, body: PLACEHOLDER.green });
  t.same(await get(f.nginx, 'shop.test', MARKER), { status: 200, body: 'blue\n' });
  t.same(await get(f.nginx, 'next.shop.test', MARKER), { status: 200, body: 'green\n' });

  // Nothing runs in green: a cutover is refused; forced, it switches and the placeholders stay.
  const refused = await cli(['cutover', '--root', f.root]);
  t.equal(refused.code, 1);
  t.match(refused.stderr, `green is not healthy (GET / on port ${ports[1]}: connection refused)`);
  const placeholders = ['blue', 'green'].map((c) => readFileSync(path.join(f.root, c, 'etc', 'nginx.conf'), 'utf8'));
  const forced = await cli(['cutover', '--force', '--root', f.root]);
  t.equal(forced.code, 0, forced.stderr);
  t.same(await get(f.nginx, 'shop.test'), { status: 503, body: PLACEHOLDER.green }, 'the marker confirmed the switch');
  t.same(await get(f.nginx, 'next.shop.test'), { status: 503, body: PLACEHOLDER.blue });
  t.same(
    ['blue', 'green'].map((c) => readFileSync(path.join(f.root, c, 'etc', 'nginx.conf'), 'utf8')),
    placeholders,
    'a color without a release keeps its placeholder through a cutover',
  );
});

t.test('first deploy and first cutover of a new root under load: none failed', async (t) => {
  const dir = tempDir(t);
  const repo = WorkRepo.init(path.join(dir, 'app'));
  repo.commit('v1', { 'app.js': readFileSync(FIXTURE_APP, 'utf8'), VERSION: 'v1\n' });
  const [bluePort, greenPort] = [await freePort(), await freePort()];
  const f = await freshRoot(
    t,
    ['--blue-port', String(bluePort), '--green-port', String(greenPort), '--repo', repo.dir, '--health-path', '/health', '--start', 'APP_VERSION=$(cat VERSION) exec node app.js'],
    (c) => {
      c.app.env = { NODE_OPTIONS: '' }; // tap's loaders would slow the app's start
      c.app.health = { path: '/health', intervalMs: 200 };
      c.app.startTimeoutMs = 8000;
      c.drainTimeoutMs = 5000;
    },
  );
  t.same(await get(f.nginx, 'shop.test'), { status: 503, body: PLACEHOLDER.blue }, 'nginx serves the new root before any deploy');
  t.same(await get(f.nginx, 'shop.test', MARKER), { status: 200, body: 'blue\n' });
  await serve(t, f.root);

  const APP = 'green v1\n';
  let cutoverDone = Number.POSITIVE_INFINITY;
  const lateBlue: number[] = [];
  let liveApp = 0;
  // Fresh connections, paced as in load.test.ts; every reply is the app or a placeholder.
  const live = startLoad({
    port: f.nginx.port,
    host: 'shop.test',
    concurrency: 40,
    keepAlive: false,
    maxMs: 60_000,
    paceMs: 80,
    ok: (r) => (r.status === 200 && r.body === APP) || (r.status === 503 && r.body === PLACEHOLDER.blue),
    onReply: (r, startedAt) => {
      if (r.body === APP) liveApp++;
      else if (startedAt > cutoverDone) lateBlue.push(r.status);
    },
  });
  const next = startLoad({
    port: f.nginx.port,
    host: 'next.shop.test',
    concurrency: 10,
    keepAlive: false,
    maxMs: 60_000,
    paceMs: 80,
    ok: (r) => (r.status === 200 && r.body === APP) || (r.status === 503 && (r.body === PLACEHOLDER.green || r.body === PLACEHOLDER.blue)),
  });
  t.teardown(() => Promise.all([live.stop(), next.stop()]));

  const deployStarted = performance.now();
  const d = await cli(['deploy', '--root', f.root]);
  const deployMs = Math.round(performance.now() - deployStarted);
  t.equal(d.code, 0, d.stderr);
  const reload = /nginx: green's include changed: test (\d+) ms, reload (\d+) ms, old workers gone in (\d+) ms/.exec(d.stdout);
  t.ok(reload, `deploy reloaded nginx for green's new include: ${d.stdout}`);
  t.match(d.stdout, /^ {2}nginx +\d+ ms$/m, 'the nginx step is printed with its duration');
  t.same(await get(f.nginx, 'next.shop.test'), { status: 200, body: APP }, 'the preview host serves the release once deploy returns');
  t.same(await get(f.nginx, 'shop.test'), { status: 503, body: PLACEHOLDER.blue }, 'live still has no release');

  const cutoverStarted = performance.now();
  const c = await cli(['cutover', '--root', f.root]);
  cutoverDone = performance.now();
  t.equal(c.code, 0, c.stderr);
  t.match(c.stdout, /live: green \(was blue\) through nginx in \d+ ms/);
  t.same(await get(f.nginx, 'shop.test'), { status: 200, body: APP });
  t.same(await get(f.nginx, 'next.shop.test'), { status: 503, body: PLACEHOLDER.blue }, 'blue, now next, keeps its placeholder');

  // As much load on the release after the cutover as before it.
  await waitFor(() => liveApp >= 500, 20_000, '500 replies from the release on the live host');
  const [l, n] = [await live.stop(), await next.stop()];
  t.comment(`first deploy ${deployMs} ms (nginx test ${reload?.[1]} ms, reload ${reload?.[2]} ms, old workers ${reload?.[3]} ms); first cutover ${Math.round(cutoverDone - cutoverStarted)} ms: ${c.stdout.trim()}`);
  t.comment(`live host: ${l.total} requests ${JSON.stringify(l.colors)}, failed ${l.failed} ${JSON.stringify(l.errors)}`);
  t.comment(`next host: ${n.total} requests ${JSON.stringify(n.colors)}, failed ${n.failed} ${JSON.stringify(n.errors)}`);
  t.equal(l.failed + n.failed, 0, `no failed request: ${JSON.stringify({ live: l.errors, next: n.errors })}`);
  t.ok(l.total >= 400, `the load ran (${l.total} on the live host)`);
  t.ok((l.colors[PLACEHOLDER.blue] ?? 0) > 0 && (l.colors[APP] ?? 0) > 0, 'the live host served the placeholder, then the release');
  t.ok((n.colors[PLACEHOLDER.green] ?? 0) > 0 && (n.colors[APP] ?? 0) > 0, 'the preview host served the placeholder, then the release');
  t.same(lateBlue, [], 'no request started after the cutover returned got anything but the release');
});

t.test('deploy: a failing nginx -t puts next\'s files back byte for byte; the next deploy reloads nginx with them', async (t) => {
  const blue = await startBackend(t, 'blue');
  const green = await startBackend(t, 'green');
  const dir = tempDir(t);
  const repo = WorkRepo.init(path.join(dir, 'app'));
  repo.commit('v1', { VERSION: 'v1\n' });
  const f = await freshRoot(t, ['--blue-port', String(blue.port), '--green-port', String(green.port), '--repo', repo.dir]);
  const include = includeFile(f.root, 'green');
  const before = readFileSync(include);
  editConfig(f.root, (c) => {
    (c.nginx as Record<string, string>).testCommand = `echo 'nginx: [emerg] simulated test failure' >&2; exit 1`;
  });
  const bad = await cli(['deploy', '--root', f.root]);
  t.equal(bad.code, 1);
  t.match(bad.stderr, /nginx test failed.*simulated test failure; green's nginx files are back as they were \(nginx was not reloaded\)/);
  t.ok(readFileSync(include).equals(before), "green's placeholder is back, byte for byte");
  t.same(await get(f.nginx, 'next.shop.test'), { status: 503, body: PLACEHOLDER.green });

  editConfig(f.root, (c) => {
    (c.nginx as Record<string, string>).testCommand = f.nginx.testCommand;
  });
  // The same commit: the failed deploy is on record (COLOR/etc/failed.json, issue 22), so it is
  // deployed again rather than taken as already running, and nginx loads the include.
  const good = await cli(['deploy', '--root', f.root]);
  t.equal(good.code, 0, good.stderr);
  t.match(good.stdout, /green now runs [0-9a-f]{7} "v1"/);
  t.match(good.stdout, /nginx: green's include changed: test \d+ ms, reload \d+ ms, old workers gone in \d+ ms/);
  t.same(await get(f.nginx, 'next.shop.test'), { status: 200, body: 'green' });
  const again = await cli(['deploy', '--root', f.root]);
  t.match(again.stdout, /nginx: green's include unchanged, nginx not reloaded/);
});

t.test('the placeholder replaces only nothing or itself', async (t) => {
  const root = makeRoot(t, { mode: 'nginx', hosts: { live: ['shop.test'], next: [] }, listen: '127.0.0.1:18080' });
  const config = loadConfig(root);
  const file = includeFile(root, 'blue');
  t.match(readFileSync(file, 'utf8'), /^# written by bgproxy: placeholder for blue/, 'init wrote the placeholder');
  t.same(writeColorFiles(config, 'blue'), [], 'kept as is, nothing rewritten');

  // A recipe's one-line include, no release: someone's traffic may run through it; never a 503.
  writeFileSync(file, 'proxy_pass http://127.0.0.1:8888/;\n');
  t.equal(writeColorFiles(config, 'blue').length, 1);
  t.equal(readFileSync(file, 'utf8'), renderInclude(config, 'blue'), 'the real include replaces it');
  t.same(writeColorFiles(config, 'blue'), [], 'and stays (a failed redeploy clears release.json)');

  // A release with the placeholder still in place (a deploy that failed at its reload).
  const green = includeFile(root, 'green');
  mkdirSync(path.dirname(releasePath(root, 'green')), { recursive: true });
  writeFileSync(releasePath(root, 'green'), '{}\n');
  t.match(readFileSync(green, 'utf8'), /^# written by bgproxy: placeholder for green/);
  writeColorFiles(config, 'green');
  t.equal(readFileSync(green, 'utf8'), renderInclude(config, 'green'), 'a color with a release gets the real include');
});

t.test('init --mode nginx refuses, in one line and before creating anything, a root nginx cannot include', async (t) => {
  const root = path.join(tempDir(t), 'my shop');
  const r = await cli(['init', '--root', root, '--mode', 'nginx', '--host', 'shop.test']);
  t.equal(r.code, 2);
  t.match(r.stderr, /^bgproxy: nginx: refusing to write the root ".*\/my shop" into an nginx file: [^\n]*$/, 'one line');
  t.notOk(existsSync(root), 'nothing was created');
});
