// End to end, as a user types it: init, serve (a child process), status, cutover,
// rollback, SIGTERM with a request in flight.
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import t from 'tap';
import { BIN, cli, initWithBackends, serve } from '../helpers/cli.js';
import { get, request } from '../helpers/http.js';
import { tempDir } from '../helpers/root.js';

t.test('init, serve, status, cutover, rollback, graceful SIGTERM', async (t) => {
  const { root, blue, green, init } = await initWithBackends(t, '127.0.0.1:0');
  t.equal(init.code, 0, init.stderr);
  t.match(init.stdout, /live -> blue, next -> green/);
  const cfg = JSON.parse(readFileSync(path.join(root, 'bgproxy.json'), 'utf8'));
  t.same(cfg.hosts, { live: ['shop.test'], next: ['next.shop.test'] }, 'next.<host> by default');

  const noServer = await cli(['status', '--root', root]);
  t.equal(noServer.code, 1);
  t.match(noServer.stderr, /^bgproxy: no bgproxy server is running/);
  t.equal(noServer.stderr.trim().split('\n').length, 1, 'one line');

  const s = await serve(t, root);
  t.ok(s.port > 0, `listening on ${s.port}`);
  const second = await cli(['serve', '--root', root]);
  t.equal(second.code, 1, 'a second serve on the same root refuses');
  t.match(second.stderr, /another bgproxy serve is running/);

  const st = await cli(['status', '--root', root, '--json']);
  t.equal(st.code, 0, st.stderr);
  const status = JSON.parse(st.stdout);
  t.equal(status.live, 'blue');
  t.equal(status.next, 'green');
  t.equal(status.mode, 'proxy');
  t.equal(status.listen, `127.0.0.1:${s.port}`);
  t.equal(status.colors.blue.port, blue.port);
  t.equal(status.colors.blue.healthy, true);
  t.equal(status.colors.green.inflight, 0);
  const table = await cli(['status'], { cwd: root });
  t.match(table.stdout, /live: blue/, 'the root defaults to the current directory');

  t.equal(await get(s.port, 'shop.test'), 'blue');
  const cut = await cli(['cutover', '--root', root]);
  t.equal(cut.code, 0, cut.stderr);
  t.match(cut.stdout, /^live: green \(was blue\), drained \d+ requests? in \d+ ms/);
  t.equal(await get(s.port, 'shop.test'), 'green');
  t.equal(readlinkSync(path.join(root, 'live')), 'green');
  t.ok(s.logs.some((l) => l.event === 'cutover'), 'cutover logged');

  const rb = await cli(['rollback'], { env: { BGPROXY_ROOT: root } });
  t.equal(rb.code, 0, rb.stderr);
  t.match(rb.stdout, /live: blue \(was green\)/);
  t.equal(await get(s.port, 'shop.test'), 'blue');

  await green.close();
  const refused = await cli(['cutover', '--root', root]);
  t.equal(refused.code, 1);
  t.match(refused.stderr, /green is not healthy/);
  t.equal(await get(s.port, 'shop.test'), 'blue');

  // A request in flight when SIGTERM arrives still completes.
  const slow = request(s.port, 'shop.test', { path: '/slow?ms=700' });
  await new Promise((r) => setTimeout(r, 200));
  const exit = s.stop('SIGTERM');
  const reply = await slow;
  t.equal(reply.status, 200);
  t.equal(reply.body.trim(), 'blue');
  t.equal(await exit, 0, 'exit 0 after SIGTERM');
  t.notOk(existsSync(path.join(root, 'run', 'bgproxy.sock')), 'socket removed');
  // Access lines are written in blocks; the stop writes out the last one before exit.
  const access = s.logs.filter((l) => l.component === 'access');
  t.equal(access.length, 5, 'one access line per proxied request, none lost at SIGTERM');
  t.match(access[0], { method: 'GET', host: 'shop.test', path: '/', status: 200, color: 'blue' });
  t.match(access[4], { path: '/slow?ms=700', status: 200, color: 'blue' }, 'the request answered during the stop is logged');
});

t.test('bad config: exit 2, the key named in one line, nothing changed', async (t) => {
  const root = path.join(tempDir(t), 'shop');
  t.equal((await cli(['init', '--root', root, '--host', 'a.test'])).code, 0);
  const before = readFileSync(path.join(root, 'bgproxy.json'), 'utf8');
  const cases: Array<[string[], RegExp]> = [
    [['--blue-port', '8889'], /colors: blue and green use the same port 8889/],
    [['--green-port', 'abc'], /--green-port/],
    [['--host', 'bad_host!'], /--host: malformed host name/],
    [['--listen', 'nope:x'], /--listen/],
  ];
  for (const [flags, msg] of cases) {
    const r = await cli(['init', '--root', root, '--force', ...flags]);
    t.equal(r.code, 2, flags.join(' '));
    t.match(r.stderr, msg);
    t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
  }
  t.equal(readFileSync(path.join(root, 'bgproxy.json'), 'utf8'), before, 'config untouched');
  const { writeFileSync } = await import('node:fs');
  writeFileSync(path.join(root, 'bgproxy.json'), JSON.stringify({ listen: '127.0.0.1:0', colors: { blue: { port: 1 }, green: { port: 1 } } }));
  const r = await cli(['serve', '--root', root]);
  t.equal(r.code, 2);
  t.match(r.stderr, /^bgproxy: config: colors: blue and green use the same port 1$/);
  const unknown = await cli(['frobnicate']);
  t.equal(unknown.code, 2);
});

t.test('the bin runs through its shebang (env -S node with flags), as npm links it', async (t) => {
  const r = await execa(BIN, ['--version'], { reject: false, env: { NODE_OPTIONS: '' } });
  t.equal(r.exitCode, 0, r.stderr);
  t.equal(r.stdout, JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version);
});
