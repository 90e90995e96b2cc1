// ansible/install.yml (the bgproxy role) run for real on this machine: Ansible's local
// connection, a temp prefix, root and unit directory, services not managed (no systemd
// here). bgproxy is installed from an `npm pack` tarball and runs; the root is initialised;
// the units are the ones "Running under systemd" describes.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import t from 'tap';
import { tempDir } from '../helpers/root.js';

const REPO = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');

t.test('the bgproxy role installs bgproxy and writes its units', async (t) => {
  const dir = tempDir(t, 'bginst-');
  const pack = await execa('npm', ['pack', '--ignore-scripts', '--pack-destination', dir], { cwd: REPO, reject: false });
  t.equal(pack.exitCode, 0, pack.stderr);
  const tarball = path.join(dir, String(pack.stdout).trim().split('\n').at(-1)!);
  mkdirSync(path.join(dir, 'ansible-local'));
  const vars = {
    bgproxy_package_src: tarball,
    bgproxy_prefix: path.join(dir, 'prefix'),
    bgproxy_root: path.join(dir, 'srv', 'shop'),
    bgproxy_systemd_dir: path.join(dir, 'units'),
    bgproxy_manage_services: false,
    bgproxy_app: 'shop',
    bgproxy_listen_https: '0.0.0.0:443',
    bgproxy_init_args: ['--host', 'shop.test', '--listen', '127.0.0.1:0'],
    ansible_python_interpreter: '/usr/bin/python3',
    // The dependencies come from npm's cache when it has them (npm ci filled it here).
    bgproxy_npm_args: ['--prefer-offline'],
  };
  const first = await execa('ansible-playbook', ['-i', 'localhost,', '-c', 'local', path.join(REPO, 'ansible/install.yml'), '-e', JSON.stringify(vars)], {
      env: { ANSIBLE_NOCOLOR: '1', ANSIBLE_RETRY_FILES_ENABLED: 'False', ANSIBLE_LOCAL_TEMP: path.join(dir, 'ansible-local'), ANSIBLE_REMOTE_TMP: path.join(dir, 'ansible-remote') },
      reject: false,
      all: true,
      timeout: 240_000,
    });
  t.equal(first.exitCode, 0, String(first.all));
  const bin = path.join(vars.bgproxy_prefix, 'bin', 'bgproxy');
  const version = (JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
  t.equal(String((await execa(bin, ['--version'])).stdout).trim(), version, 'the installed bgproxy runs');
  const config = JSON.parse(readFileSync(path.join(vars.bgproxy_root, 'bgproxy.json'), 'utf8')) as { hosts: { live: string[] } };
  t.same(config.hosts.live, ['shop.test'], 'bgproxy init ran with bgproxy_init_args');
  const socket = readFileSync(path.join(vars.bgproxy_systemd_dir, 'bgproxy-shop.socket'), 'utf8');
  const service = readFileSync(path.join(vars.bgproxy_systemd_dir, 'bgproxy-shop.service'), 'utf8');
  t.match(socket, /ListenStream=0\.0\.0\.0:80\nFileDescriptorName=http\nListenStream=0\.0\.0\.0:443\nFileDescriptorName=https\n/);
  t.match(service, `ExecStart=${bin} serve --root ${vars.bgproxy_root}\n`);
  t.match(service, /Requires=bgproxy-shop\.socket\n/);
  t.match(service, /KillMode=mixed\n/);
  if (existsSync('/usr/bin/systemd-analyze')) {
    // Without a running systemd, verify still parses the units and checks ExecStart's binary.
    const v = await execa('systemd-analyze', ['verify', '--man=no', path.join(vars.bgproxy_systemd_dir, 'bgproxy-shop.socket'), path.join(vars.bgproxy_systemd_dir, 'bgproxy-shop.service')], { reject: false, all: true });
    t.notMatch(String(v.all), /Unknown (key|section)|Invalid|bad-setting|Failed to parse/i, `systemd-analyze verify: ${String(v.all)}`);
  }

});
