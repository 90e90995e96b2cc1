// fleet.json is validated like bgproxy.json: the first problem in one line naming the key,
// exit 2, before anything connects anywhere.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { parseFleet } from '../../src/fleet/config.js';
import { cli } from '../helpers/cli.js';
import { tempDir } from '../helpers/root.js';

const server = { name: 'web1', ssh: 'deploy@web1', root: '/srv/shop' };

t.test('a valid fleet gets its defaults; relative paths resolve against the file', async (t) => {
  const f = parseFleet({ sshConfig: 'ssh_config', servers: [{ ...server, identityFile: 'keys/id', port: 2222 }, { ssh: 'web2', root: '/srv/shop' }] }, '/etc/ops/fleet.json');
  t.equal(f.sshConfig, '/etc/ops/ssh_config');
  t.equal(f.parallel, 4);
  t.equal(f.onFailure, 'rollback');
  t.match(f.servers[0], { name: 'web1', port: 2222, identityFile: '/etc/ops/keys/id', bgproxy: 'bgproxy' });
  t.match(f.servers[1], { name: 'web2', ssh: 'web2', port: null, identityFile: null });
});

t.test('each problem is refused naming its key', async (t) => {
  const cases: Array<[unknown, RegExp]> = [
    [{ servers: [{ ...server, hots: 1 }] }, /^f\.json: servers\[0\]\.hots: unknown key; valid keys: name, ssh, port, identityFile, root, bgproxy$/],
    [{ servers: [] }, /^f\.json: servers: must be a non-empty list/],
    [{ servers: [{ ssh: 'web1' }] }, /^f\.json: servers\[0\]\.root: is required/],
    [{ servers: [{ ...server, root: 'srv/shop' }] }, /^f\.json: servers\[0\]\.root: must be an absolute path/],
    [{ servers: [{ ...server, ssh: '-oProxyCommand=x' }] }, /^f\.json: servers\[0\]\.ssh: must be a destination/],
    [{ servers: [server, server] }, /^f\.json: servers\[1\]\.name: "web1" is used twice$/],
    [{ parallel: 0, servers: [server] }, /^f\.json: parallel: must be between 1 and 256, got 0$/],
    [{ onFailure: 'pray', servers: [server] }, /^f\.json: onFailure: must be one of "rollback", "stay"/],
    [{ servers: [{ ...server, port: '22' }] }, /^f\.json: servers\[0\]\.port: must be an integer/],
  ];
  for (const [raw, message] of cases) t.throws(() => parseFleet(raw, 'f.json'), { code: 'BG_CONFIG', message }, String(message));
});

t.test('the CLI says it in one line and exits 2', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'fleet.json');
  writeFileSync(file, JSON.stringify({ parallel: 2, servers: [{ ...server, rooot: '/srv' }] }));
  for (const cmd of [['status'], ['deploy', '--cutover']]) {
    const r = await cli(['fleet', ...cmd, '--fleet', file], { env: { XDG_RUNTIME_DIR: dir, NODE_OPTIONS: '' } });
    t.equal(r.code, 2, cmd.join(' '));
    t.match(r.stderr, `bgproxy: ${file}: servers[0].rooot: unknown key (did you mean "root"?); valid keys: `);
    t.equal(r.stderr.split('\n').filter(Boolean).length, 1, 'one line');
    t.equal(r.stdout, '');
  }
  const empty = tempDir(t);
  const missing = await cli(['fleet', 'status', '--root', empty], { env: { NODE_OPTIONS: '' } });
  t.equal(missing.code, 2);
  t.match(missing.stderr, /^bgproxy: no fleet file .*fleet\.json \(write one, or pass --fleet FILE\)$/);
});
