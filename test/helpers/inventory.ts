// The three-sshd fleet (test/helpers/fleet.ts) as an Ansible INI inventory, written the
// ways people write them: web1 and web2 by ansible_host/port/user/key with the known
// hosts in ansible_ssh_common_args, web3 by its Host alias through `-F ssh_config`;
// bgproxy_root per host, bgproxy_command for the group.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { BIN } from './cli.js';
import type { FleetSetup } from './fleet.js';

export interface InventorySetup {
  file: string;
  /** The ops dir (ssh_config, known_hosts, the inventory); also the ansible temp dirs' parent. */
  dir: string;
  /** `bgproxy fleet ARGS --inventory FILE`, in the app's checkout. */
  fleet(args: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  /** Environment for ansible-playbook: fast, quiet, no host key prompts, its files in the ops dir. */
  ansibleEnv: Record<string, string>;
}

export const PLAYBOOK = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../ansible/release.yml');

export function writeInventory(f: FleetSetup, extraAllVars: string[] = []): InventorySetup {
  const dir = path.dirname(f.fleetFile);
  const fleet = JSON.parse(readFileSync(f.fleetFile, 'utf8')) as { servers: Array<{ identityFile?: string }> };
  const identity = fleet.servers[0]!.identityFile!;
  const knownHosts = path.join(dir, 'known_hosts');
  const lines = ['[web]'];
  for (const [i, s] of f.servers.entries()) {
    if (i === f.servers.length - 1) {
      lines.push(`${s.name} bgproxy_root=${s.root} ansible_ssh_common_args='-F ${path.join(dir, 'ssh_config')}'`);
    } else {
      lines.push(
        `${s.name} ansible_host=127.0.0.1 ansible_port=${s.sshd.port} ansible_user=root ansible_ssh_private_key_file=${identity} bgproxy_root=${s.root} ` +
          `ansible_ssh_common_args='-o UserKnownHostsFile=${knownHosts} -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes -o LogLevel=ERROR'`,
      );
    }
  }
  lines.push('', '[web:vars]', `bgproxy_command=node ${BIN}`, `bgproxy_parallel=${f.servers.length}`, '', '[all:vars]', 'ansible_python_interpreter=/usr/bin/python3', ...extraAllVars, '');
  const file = path.join(dir, 'hosts.ini');
  writeFileSync(file, lines.join('\n'));
  const env = { XDG_RUNTIME_DIR: path.dirname(dir), NODE_OPTIONS: '' };
  const run = async (args: string[]) => {
    const r = await execa('node', [BIN, 'fleet', ...args, '--inventory', file], { cwd: f.repo.dir, env, reject: false, timeout: 120_000 });
    return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
  };
  const ansibleEnv = {
    NODE_OPTIONS: '',
    ANSIBLE_HOST_KEY_CHECKING: 'True',
    ANSIBLE_GATHERING: 'explicit',
    ANSIBLE_RETRY_FILES_ENABLED: 'False',
    ANSIBLE_PIPELINING: 'True',
    ANSIBLE_NOCOLOR: '1',
    ANSIBLE_FORKS: '10',
    ANSIBLE_LOCAL_TEMP: path.join(dir, 'ansible-local'),
    ANSIBLE_SSH_CONTROL_PATH_DIR: path.join(dir, 'ansible-cp'),
    // The masters end with the test's sshd; this bounds them if it is killed.
    ANSIBLE_SSH_ARGS: '-o ControlMaster=auto -o ControlPersist=15s',
    ANSIBLE_DEPRECATION_WARNINGS: 'False',
    ANSIBLE_STDOUT_CALLBACK: 'default',
  };
  return { file, dir, fleet: run, ansibleEnv };
}

/** `ansible-playbook -i INVENTORY ansible/release.yml -e bgproxy_commit=SHA …`. */
export async function runPlaybook(inv: InventorySetup, vars: Record<string, string>): Promise<{ code: number; out: string }> {
  const extra = Object.entries(vars).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
  const r = await execa('ansible-playbook', ['-i', inv.file, PLAYBOOK, ...extra], { env: inv.ansibleEnv, reject: false, all: true, timeout: 200_000 });
  return { code: r.exitCode ?? -1, out: String(r.all) };
}

/**
 * The first release, made on each server directly (deploy from the app's checkout, then
 * cutover): what a test releases through the fleet comes after it, and this costs no ssh.
 */
export async function firstRelease(f: FleetSetup, sha: string): Promise<void> {
  const env = { NODE_OPTIONS: '' };
  await Promise.all(
    f.servers.map(async (s) => {
      const r = await execa('node', [BIN, 'deploy', sha, '--from', f.repo.dir, '--cutover', '--root', s.root], { env, reject: false, all: true, timeout: 200_000 });
      if (r.exitCode !== 0) throw new Error(`${s.name}: bgproxy deploy --cutover failed (${r.timedOut ? 'timed out' : `exit ${r.exitCode}`}): ${String(r.all).slice(-2000)}`);
    }),
  );
}
