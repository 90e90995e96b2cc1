// nginx mode end to end through the CLI: serve supervises the apps (no HTTP listener),
// deploy writes the release and its include, cutover switches nginx; and without serve,
// cutover and deploy still work, as in the recipe.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import t, { type Test } from 'tap';
import { loadConfig } from '../../src/config.js';
import { initRoot } from '../../src/layout/init.js';
import { writeInclude } from '../../src/nginx/conf.js';
import { WorkRepo } from '../deploy/git-repos.js';
import { FIXTURE_APP } from '../helpers/apps.js';
import { cli, serve } from '../helpers/cli.js';
import { NGINX_BIN, request, startBackend, startNginx } from '../helpers/nginx.js';
import { freePort } from '../helpers/ports.js';
import { tempDir } from '../helpers/root.js';

/** A real nginx in front of ROOT (nginx mode, hosts shop.test / next.shop.test), both includes written. */
function startNginxRoot(t: Test, root: string, ports: { blue: number; green: number }, extra: Record<string, unknown>) {
  return startNginx(t, (s) => {
    initRoot({
      root,
      settings: {
        listen: `127.0.0.1:${s.port}`,
        mode: 'nginx',
        hosts: { live: ['shop.test'], next: ['next.shop.test'] },
        colors: { blue: { port: ports.blue }, green: { port: ports.green } },
        nginx: { testCommand: s.testCommand, reloadCommand: s.reloadCommand, pidFile: s.pidFile },
        ...extra,
      },
    });
    const config = loadConfig(root);
    writeInclude(config, 'blue');
    writeInclude(config, 'green');
    return config;
  });
}

async function through(port: number, host: string): Promise<string> {
  const r = await request({ port, host, path: '/' });
  return r.error ? `error ${r.error}` : r.body.trim();
}

t.test('serve in nginx mode: deploy two releases, cutover switches nginx', async (t) => {
  const dir = tempDir(t);
  const root = path.join(dir, 'root');
  const repo = WorkRepo.init(path.join(dir, 'app'));
  const app = readFileSync(FIXTURE_APP, 'utf8');
  repo.commit('v1', { 'app.js': app, VERSION: 'v1\n' });
  const [bluePort, greenPort] = [await freePort(), await freePort()];
  const { nginx } = await startNginxRoot(t, root, { blue: bluePort, green: greenPort }, {
    app: {
      repo: repo.dir,
      start: 'APP_VERSION=$(cat VERSION) exec node app.js',
      env: { NODE_OPTIONS: '' },
      health: { path: '/health', intervalMs: 200 },
      startTimeoutMs: 8000,
    },
    drainTimeoutMs: 5000,
  });
  const s = await serve(t, root);
  t.equal(s.port, 0, 'no HTTP listener in nginx mode');
  const d1 = await cli(['deploy', '--root', root]);
  t.equal(d1.code, 0, d1.stderr);
  t.match(d1.stdout, new RegExp(`green now runs [0-9a-f]{7} "v1" - preview: http://next\\.shop\\.test:${nginx.port}/ - go live: bgproxy cutover`), 'the preview URL has the port nginx listens on');
  t.match(d1.stdout, /^ {2}install +\d+ ms$/m, "each step is printed with its duration");
  t.equal(await through(nginx.port, 'next.shop.test'), 'green v1', 'the preview host serves the release through nginx');
  const c1 = await cli(['cutover', '--root', root]);
  t.equal(c1.code, 0, c1.stderr);
  t.match(c1.stdout, /live: green \(was blue\) through nginx in \d+ ms \(test \d+ ms, reload \d+ ms, verify \d+ ms\)/);
  t.equal(await through(nginx.port, 'shop.test'), 'green v1');

  repo.commit('v2', { VERSION: 'v2\n' });
  t.equal((await cli(['deploy', '--root', root])).code, 0);
  t.equal(await through(nginx.port, 'next.shop.test'), 'blue v2');
  t.equal((await cli(['cutover', '--root', root])).code, 0);
  t.equal(await through(nginx.port, 'shop.test'), 'blue v2');
  const rb = await cli(['rollback', '--root', root]);
  t.equal(rb.code, 0, rb.stderr);
  t.equal(await through(nginx.port, 'shop.test'), 'green v1');
  const st = JSON.parse((await cli(['status', '--json', '--root', root])).stdout);
  t.equal(st.mode, 'nginx');
  t.equal(st.live, 'green');
  t.equal(st.listen, null);
  t.equal(await s.stop(), 0);
});

t.test('without serve, app.start set: deploy refuses in one line and changes nothing', async (t) => {
  const dir = tempDir(t);
  const root = path.join(dir, 'root');
  const repo = WorkRepo.init(path.join(dir, 'app'));
  repo.commit('v1', { 'app.js': readFileSync(FIXTURE_APP, 'utf8'), VERSION: 'v1\n' });
  const [bluePort, greenPort] = [await freePort(), await freePort()];
  await startNginxRoot(t, root, { blue: bluePort, green: greenPort }, { app: { repo: repo.dir, start: 'exec node app.js' } });
  const include = path.join(root, 'green', 'etc');
  const before = readdirSync(include).map((f) => [f, readFileSync(path.join(include, f), 'utf8')]);
  const d = await cli(['deploy', '--root', root]);
  t.equal(d.code, 1, d.stdout);
  t.match(d.stderr, /^bgproxy: app\.start is set, so bgproxy serve runs the apps, and none is running for .*: start it \(bgproxy serve --root .*\), then deploy\n?$/);
  t.same(readdirSync(include).map((f) => [f, readFileSync(path.join(include, f), 'utf8')]), before, "green's files unchanged");
  t.notOk(existsSync(path.join(root, 'green', 'repo', 'app.js')), 'nothing checked out');
});

t.test('without serve: cutover and rollback run in the CLI; bad nginx config is restored', async (t) => {
  const dir = tempDir(t);
  const root = path.join(dir, 'root');
  mkdirSync(root);
  const blue = await startBackend(t, 'blue');
  const green = await startBackend(t, 'green');
  const { nginx } = await startNginxRoot(t, root, { blue: blue.port, green: green.port }, { drainTimeoutMs: 3000 });
  t.equal(await through(nginx.port, 'shop.test'), 'blue');
  const c = await cli(['cutover', '--root', root]);
  t.equal(c.code, 0, c.stderr);
  t.equal(await through(nginx.port, 'shop.test'), 'green');
  const status = await cli(['status', '--root', root]);
  t.equal(status.code, 1, 'status needs serve');

  const cfg = JSON.parse(readFileSync(path.join(root, 'bgproxy.json'), 'utf8'));
  cfg.nginx.testCommand = 'echo "nginx: [emerg] unexpected \\"}\\" in site.conf:3" >&2; exit 1';
  writeFileSync(path.join(root, 'bgproxy.json'), JSON.stringify(cfg));
  const bad = await cli(['rollback', '--root', root]);
  t.equal(bad.code, 1);
  t.match(bad.stderr, /unexpected "}"/, "nginx's own error text");
  t.equal(await through(nginx.port, 'shop.test'), 'green', 'still serving the old live color');
  const hist = await cli(['history', '--root', root, '--json']);
  const entries = hist.stdout.trim().split('\n').map((l) => JSON.parse(l));
  t.same(entries.map((e: { action: string; result: string }) => `${e.action}:${e.result}`), ['cutover:ok', 'rollback:failed']);
  const nc = await cli(['nginx-config', '--root', root]);
  t.equal(nc.code, 0);
  t.match(nc.stdout, /server_name shop\.test;/);
  t.match(nc.stdout, new RegExp(`include ${root}/live/etc/nginx.conf;`));
});

t.test('adopting a recipe root: init keeps its includes and writes the upstream files the server blocks include; nginx -t passes', async (t) => {
  const dir = tempDir(t);
  const root = path.join(dir, 'root');
  // The recipe's one-line includes, made by hand before bgproxy; no upstream files.
  const recipe = (port: number) => `proxy_pass http://127.0.0.1:${port}/;\n`;
  for (const [color, port] of [['blue', 8888], ['green', 8889]] as const) {
    mkdirSync(path.join(root, color, 'etc'), { recursive: true });
    writeFileSync(path.join(root, color, 'etc', 'nginx.conf'), recipe(port));
  }
  const init = await cli(['init', '--root', root, '--mode', 'nginx', '--listen', '127.0.0.1:18080', '--host', 'shop.test']);
  t.equal(init.code, 0, init.stderr);
  const upstreams = ['blue', 'green'].map((c) => path.join(root, c, 'etc', 'nginx-upstream.conf'));
  t.equal(init.stdout.split('\n')[1], `wrote ${upstreams.join(', ')} (included by the site file of bgproxy nginx-config)`);
  t.notMatch(init.stdout, /no release yet/, 'no placeholder over an existing include');
  t.equal(readFileSync(path.join(root, 'green', 'etc', 'nginx.conf'), 'utf8'), recipe(8889), "the recipe's include is kept byte for byte");
  t.match(readFileSync(upstreams[1]!, 'utf8'), /server 127\.0\.0\.1:8889;/);

  const nc = await cli(['nginx-config', '--root', root]);
  t.equal(nc.code, 0, nc.stderr);
  t.equal(nc.stderr, '', 'init wrote everything the site file includes');
  const site = path.join(dir, 'site.conf');
  writeFileSync(site, nc.stdout);
  const conf = path.join(dir, 'nginx.conf');
  writeFileSync(conf, `pid ${dir}/nginx.pid; error_log ${dir}/error.log; events {}\nhttp { access_log off; include ${site}; }\n`);
  const test = await execa(NGINX_BIN, ['-p', `${dir}/`, '-c', conf, '-e', `${dir}/error.log`, '-t'], { reject: false, all: true });
  t.equal(test.exitCode, 0, test.all);

  // A root whose upstream files went missing (made before they existed): nginx-config writes them.
  for (const f of upstreams) rmSync(f);
  const again = await cli(['nginx-config', '--root', root]);
  t.equal(again.stderr.trim(), `wrote ${upstreams.join(', ')} (included by these server blocks)`);
  t.equal(again.stdout, nc.stdout);
  const third = await cli(['nginx-config', '--root', root]);
  t.equal(third.stderr, '', 'unchanged files are not rewritten');
});
