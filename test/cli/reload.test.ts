// `bgproxy reload` and SIGHUP against a serve child process, as a user (or systemd's
// ExecReload) does it; serve was started with a --listen override the reload keeps.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { cli, initWithBackends, serve } from '../helpers/cli.js';
import { request } from '../helpers/http.js';
import { editConfig } from '../helpers/root.js';

t.test('bgproxy reload and SIGHUP apply bgproxy.json; a bad one is refused in one line and nothing changes', async (t) => {
  const { root, green, init } = await initWithBackends(t, '127.0.0.1:8080');
  t.equal(init.code, 0, init.stderr);
  const file = path.join(root, 'bgproxy.json');
  const edit = (fn: Parameters<typeof editConfig>[1]): void => editConfig(root, fn);
  edit((c) => {
    c.unknownHost = 'reject';
  });
  const s = await serve(t, root, ['--listen', '127.0.0.1:0']);
  const status = async (host: string): Promise<number> => (await request(s.port, host)).status;
  t.equal(await status('www.shop.test'), 421);

  const same = await cli(['reload', '--root', root]);
  t.equal(same.code, 0, same.stderr);
  t.equal(same.stdout, 'config unchanged', 'the --listen override is not a change');

  edit((c) => c.hosts.live.push('www.shop.test'));
  const pending = await cli(['status', '--root', root]);
  t.match(pending.stdout, /bgproxy\.json has changed since serve loaded it \(.*\): bgproxy reload applies it/, 'status says an edit is not applied yet');
  const r = await cli(['reload', '--root', root]);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout, 'reloaded: hosts.live');
  t.equal(await status('www.shop.test'), 200);
  const applied = await cli(['status', '--root', root, '--json']);
  t.match(JSON.parse(applied.stdout).config, { file: path.join(root, 'bgproxy.json'), changedSinceLoad: false }, 'and no longer after the reload');

  edit((c) => {
    c.colors.green.port = green.port + 1;
  });
  const coldStatus = await cli(['status', '--root', root]);
  t.match(coldStatus.stdout, /has changed since serve loaded it \(.*\): bgproxy reload would refuse it \(config: colors\.green\.port: changed, and only a restart of serve applies it\)$/m, 'status does not promise a reload it would refuse');
  const cold = await cli(['reload', '--root', root]);
  t.equal(cold.code, 2, 'a config error: exit 2');
  t.equal(cold.stderr, 'bgproxy: config: colors.green.port: changed, and only a restart of serve applies it; nothing was reloaded');
  edit((c) => {
    c.colors.green.port = green.port;
    c.app.env = { GREETING: 'hi' };
  });
  const later = await cli(['reload', '--root', root]);
  t.equal(later.stdout, 'reloaded: app.env\nthe apps use app.env from their next start (bgproxy restart next, or the next deploy)');

  // SIGHUP: the outcome is in the log.
  edit((c) => c.hosts.next.push('preview.shop.test'));
  s.child.kill('SIGHUP');
  const ok = await s.waitFor((l) => l.event === 'reload' && Array.isArray(l.changed) && l.changed.includes('hosts.next'));
  t.match(ok.msg, /^config reloaded: hosts\.next$/);
  t.equal((await request(s.port, 'preview.shop.test')).body.trim(), 'green');
  writeFileSync(file, '{ "hosts": ');
  s.child.kill('SIGHUP');
  const failed = await s.waitFor((l) => l.event === 'reload-failed');
  t.match(failed.error, /bgproxy\.json is not valid JSON/);
  t.equal(await status('www.shop.test'), 200, 'still serving with the last good config');
  t.equal(await s.stop(), 0, 'a clean stop after all that');
});
