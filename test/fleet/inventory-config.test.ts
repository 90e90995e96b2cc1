// --inventory: the fleet read from an Ansible inventory by Ansible's own tools. Host vars
// map to ssh, group vars apply, --limit is Ansible's pattern language, and every problem
// is one line naming the host and the var, exit 2, before anything connects anywhere.
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { loadInventory, shellWords } from '../../src/fleet/inventory.js';
import { cli } from '../helpers/cli.js';
import { tempDir } from '../helpers/root.js';

t.test('ansible_ssh_common_args is split like shlex.split', async (t) => {
  t.same(shellWords(`-F "/a b/c" -o 'ProxyJump=x y' a\\ b  -v`), ['-F', '/a b/c', '-o', 'ProxyJump=x y', 'a b', '-v']);
  t.same(shellWords(''), []);
  t.throws(() => shellWords(`-o 'x`), /unterminated single quote/);
});

t.test('a YAML inventory: host and group vars, children, --limit', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'prod.yml');
  writeFileSync(
    file,
    [
      'all:',
      '  vars:',
      '    bgproxy_parallel: 2',
      '  children:',
      '    web:',
      '      vars:',
      '        bgproxy_root: /srv/shop',
      '        ansible_user: deploy',
      '      hosts:',
      '        web1:',
      '          ansible_host: 10.0.0.1',
      '          ansible_port: 2222',
      '          ansible_ssh_private_key_file: keys/id_web',
      `          ansible_ssh_common_args: '-o ProxyJump=bastion -o "UserKnownHostsFile=/etc/ssh/k h"'`,
      '        web2:',
      '          bgproxy_command: sudo -u shop bgproxy',
      '        "fe80::1":',
      '          ansible_user: root',
      '    db:',
      '      hosts:',
      '        db1: {}',
      '',
    ].join('\n'),
  );
  const f = await loadInventory(file, 'web', dir);
  t.equal(f.file, file);
  t.equal(f.parallel, 2, 'a fleet-wide var on all');
  t.equal(f.onFailure, 'rollback');
  t.same(
    f.servers.map((s) => [s.name, s.ssh, s.port, s.identityFile, s.sshArgs, s.root, s.bgproxy]),
    [
      ['web1', 'deploy@10.0.0.1', 2222, path.join(dir, 'keys/id_web'), ['-o', 'ProxyJump=bastion', '-o', 'UserKnownHostsFile=/etc/ssh/k h'], '/srv/shop', 'bgproxy'],
      ['web2', 'deploy@web2', null, null, [], '/srv/shop', 'sudo -u shop bgproxy'],
      ['fe80::1', 'root@fe80::1', null, null, [], '/srv/shop', 'bgproxy'],
    ],
  );
  const some = await loadInventory(file, 'web:!web2', dir);
  t.same(some.servers.map((s) => s.name), ['web1', 'fe80::1'], "Ansible's pattern language");
  await t.rejects(loadInventory(file, undefined, dir), { code: 'BG_CONFIG', message: `${file}: db1: bgproxy_root: is not set (the bgproxy root on that host, as a host or group var; or leave db1 out with --limit)` });
  await t.rejects(loadInventory(file, 'nosuch', dir), { code: 'BG_CONFIG', message: `${file}: no host matches --limit nosuch` });
});

t.test('each problem is one line naming the host and the var', async (t) => {
  const dir = tempDir(t);
  const cases: Array<[string, string]> = [
    ['web1 bgproxy_root=srv/shop', 'web1: bgproxy_root: must be an absolute path, got "srv/shop"'],
    ['web1 bgproxy_root=/srv ansible_port=http', 'web1: ansible_port: must be an integer between 1 and 65535, got "http"'],
    ['web1 bgproxy_root=/srv ansible_connection=local', 'web1: ansible_connection: is "local": bgproxy fleet reaches its servers over ssh'],
    ['web1 bgproxy_root=/srv ansible_host="{{ lookup(\'env\', \'H\') }}"', `web1: ansible_host: is a Jinja template ("{{ lookup('env', 'H') }}"): bgproxy reads the inventory without rendering it; set a plain value`],
    [`web1 bgproxy_root=/srv ansible_ssh_common_args="-o 'x"`, `web1: ansible_ssh_common_args: unterminated single quote in "-o 'x"`],
    ['web1 bgproxy_root=/srv bgproxy_on_failure=pray', 'web1: bgproxy_on_failure: must be "rollback" or "stay", got "pray"'],
    ['web1 bgproxy_root=/srv bgproxy_parallel=2\nweb2 bgproxy_root=/srv bgproxy_parallel=3', 'web2: bgproxy_parallel: is 3 here but 2 on web1: set it once for every host released together'],
    ['web1 ansible_host=-oProxyCommand=x bgproxy_root=/srv', 'web1: ansible_host: must make an ssh destination like deploy@web1, got "-oProxyCommand=x"'],
  ];
  for (const [i, [ini, message]] of cases.entries()) {
    const file = path.join(dir, `case${i}.ini`);
    writeFileSync(file, `${ini}\n`);
    await t.rejects(loadInventory(file, undefined, dir), { code: 'BG_CONFIG', message: `${file}: ${message}` }, message);
  }
});

t.test('the CLI: bad inventories, bad flags and a missing ansible-inventory, in one line each, exit 2', async (t) => {
  const dir = tempDir(t);
  const env = { XDG_RUNTIME_DIR: dir, NODE_OPTIONS: '' };
  const broken = path.join(dir, 'broken.ini');
  writeFileSync(broken, '[web]\nweb1 bgproxy_root\n');
  const good = path.join(dir, 'good.ini');
  writeFileSync(good, 'web1 bgproxy_root=/srv\n');
  const cases: Array<[string[], RegExp, Record<string, string>?]> = [
    [['status', '--inventory', broken], new RegExp(`^bgproxy: ${broken}: ${broken}:2: Expected key=value host variable assignment, got: bgproxy_root$`)],
    [['status', '--inventory', path.join(dir, 'nope.ini')], new RegExp(`^bgproxy: no inventory ${dir}/nope\\.ini \\(pass --inventory FILE: an Ansible inventory\\)$`)],
    [['status', '--limit', 'web'], /^bgproxy: --limit needs --inventory \(it is an Ansible host pattern\)$/],
    [['status', '--inventory', good, '--fleet', good], /^bgproxy: --inventory and --fleet do not go together: name the servers one way$/],
    [['deploy', '--cutover', '--inventory', good, '--limit', 'db'], new RegExp(`^bgproxy: ${good}: no host matches --limit db$`)],
  ];
  // No ansible on PATH (node and ssh are still found): the one thing needed says so.
  const bin = path.join(dir, 'bin');
  mkdirSync(bin);
  symlinkSync(process.execPath, path.join(bin, 'node'));
  cases.push([['push', '--inventory', good], /^bgproxy: --inventory needs ansible-inventory \(from ansible-core\) on this machine: install it \(apt install ansible-core, or pipx install ansible-core\)$/, { PATH: bin }]);
  for (const [args, stderr, extra] of cases) {
    const r = await cli(['fleet', ...args], { env: { ...env, ...extra }, cwd: dir });
    t.equal(r.code, 2, args.join(' '));
    t.match(r.stderr, stderr, args.join(' '));
    t.equal(r.stdout, '');
  }
});
