// `bgproxy verify` and `npm run demo` as users run them: the built CLI and the demo script
// as child processes against a real `bgproxy serve` supervising examples/node-app.
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import t from 'tap';
import type { Status } from '../../src/bgproxy.js';
import { controlRequest } from '../../src/control/client.js';
import { waitFor } from '../helpers/apps.js';
import { cli, serve } from '../helpers/cli.js';
import { freePort } from '../helpers/ports.js';
import { makeRoot, tempDir } from '../helpers/root.js';

const PKG = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const EXAMPLE = path.join(PKG, 'examples', 'node-app');
// tap's loaders in NODE_OPTIONS would slow every child process start.
const NO_LOADERS = { NODE_OPTIONS: '' };

t.test('verify --cutover against a real serve: exit 0, no failure, both colors', async (t) => {
  const root = makeRoot(t, {
    hosts: { live: ['shop.test'], next: ['next.shop.test'] },
    colors: { blue: { port: await freePort() }, green: { port: await freePort() } },
    drainTimeoutMs: 10_000,
    app: {
      start: 'exec node server.js',
      env: { ...NO_LOADERS, BLUEGREEN: '$BG_COLOR' },
      health: { path: '/', intervalMs: 200, timeoutMs: 1000 },
      startTimeoutMs: 10_000,
      stopTimeoutMs: 3000,
    },
  });
  for (const [color, version] of [['blue', 'v1'], ['green', 'v2']] as const) {
    const repo = path.join(root, color, 'repo');
    copyFileSync(path.join(EXAMPLE, 'server.js'), path.join(repo, 'server.js'));
    writeFileSync(path.join(repo, 'VERSION'), `${version}\n`);
  }
  const s = await serve(t, root, ['--no-access-log']);
  t.ok(s.port > 0);
  let pids: number[] = [];
  await waitFor(async () => {
    const st = (await controlRequest(root, 'status')) as Status;
    pids = [st.colors.blue.pid, st.colors.green.pid].filter((p): p is number => p !== null);
    return st.colors.blue.healthy && st.colors.green.healthy;
  }, 20_000, 'both apps healthy');
  // The helper's teardown SIGKILLs serve, which would leave the apps (own process groups) behind.
  t.teardown(async () => {
    await s.stop('SIGTERM');
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
  });
  const chart = path.join(tempDir(t), 'verify.svg');
  const r = await cli(['verify', '--root', root, '--duration', '3', '--connections', '8', '--cutover', '--chart', chart], {
    env: NO_LOADERS,
  });
  t.equal(r.code, 0, `exit 0\n${r.stdout}\n${r.stderr}`);
  t.match(r.stdout, /^Failed requests:\s+0$/m, 'zero failed requests');
  t.match(r.stdout, /^Websocket:.*stayed open$/m, 'the websocket stayed open');
  t.match(r.stdout, /^\s+blue v1\s+\d+$/m, 'blue answered');
  t.match(r.stdout, /^\s+green v2\s+\d+$/m, 'green answered');
  t.match(r.stdout, /s cutover: live: green \(was blue\)/);
  t.match(r.stdout, /s rollback: live: blue \(was green\)/);
  t.match(r.stdout, /^Timeline: 0\.0s blue v1 -> [\d.]+s green v2 -> [\d.]+s blue v1$/m);
  t.match(readFileSync(chart, 'utf8'), /<svg[^>]*>[\s\S]*cutover[\s\S]*rollback[\s\S]*<\/svg>/);
});

t.test('verify without a server: one line, exit 1; bad flags: exit 2', async (t) => {
  const root = makeRoot(t);
  const r = await cli(['verify', '--root', root, '--duration', '1'], { env: NO_LOADERS });
  t.equal(r.code, 1);
  t.match(r.stderr, /^bgproxy: no bgproxy server is running for /);
  const bad = await cli(['verify', '--url', 'http://127.0.0.1:1/', '--duration', 'x'], { env: NO_LOADERS });
  t.equal(bad.code, 2);
  t.match(bad.stderr, /--duration: expected a duration like 250ms, 5s or 2m/);
});

t.test('verify --url against nothing: failures by kind, exit 1', async (t) => {
  const r = await cli(['verify', '--url', 'http://127.0.0.1:1/', '--duration', '0.5', '--connections', '2', '--no-websocket'], {
    env: NO_LOADERS,
  });
  t.equal(r.code, 1);
  t.match(r.stdout, /^Failed requests:\s+[1-9]\d*\s+\(connect: [1-9]/m);
  t.match(r.stdout, /^FAILED: some requests failed$/m);
});

t.test('npm run demo (scripts/demo.js on the built dist/) ends with exit 0 and a chart', async (t) => {
  const dir = tempDir(t);
  const chart = path.join(dir, 'demo.svg');
  const started = Date.now();
  const r = await execa('node', [path.join(PKG, 'scripts', 'demo.js'), '--chart', chart], {
    reject: false,
    env: NO_LOADERS,
    timeout: 90_000,
  });
  const out = `${r.stdout}\n${r.stderr}`;
  t.equal(r.exitCode, 0, out);
  t.ok(Date.now() - started < 60_000, `finished in ${Date.now() - started} ms`);
  t.ok(existsSync(chart), 'chart written');
  t.match(r.stdout, /^Failed requests:\s+0$/m);
  t.match(r.stdout, /Hello 0-downtime green World! \(version v1\)[\s\S]*Hello 0-downtime blue World! \(version v2\)/);
  const tmp = /temp dir (\S+)/.exec(r.stdout)?.[1];
  t.ok(tmp && !existsSync(tmp), `temp dir ${tmp} removed`);
});
