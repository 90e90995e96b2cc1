// --inventory FILE [--limit PATTERN]: the fleet's servers from an Ansible inventory, read
// by Ansible itself (`ansible-inventory --list`, and `ansible PATTERN --list-hosts` for the
// hosts and their order), so INI, YAML, directories and dynamic inventories all mean here
// exactly what they mean to a playbook. ansible-core is needed only where the command runs.
import { execFile } from 'node:child_process';
import { statSync } from 'node:fs';
import path from 'node:path';
import { BgError } from '../errors.js';
import type { FleetConfig, FleetServer } from './config.js';

/** Host vars read here (the rest of the inventory is Ansible's business). */
interface HostVars {
  [key: string]: unknown;
}

interface InventoryList {
  _meta?: { hostvars?: Record<string, HostVars> };
  [group: string]: { hosts?: string[]; children?: string[]; hostvars?: unknown } | undefined;
}

/** Every host of `all`, groups walked in the order they are listed, each host once. */
function inventoryOrder(list: InventoryList): string[] {
  const seen = new Set<string>();
  const walked = new Set<string>();
  const walk = (group: string): void => {
    if (walked.has(group) || group === '_meta') return;
    walked.add(group);
    const g = list[group] as { hosts?: string[]; children?: string[] } | undefined;
    for (const h of g?.hosts ?? []) seen.add(h);
    for (const c of g?.children ?? []) walk(c);
  };
  walk('all');
  return [...seen];
}

/** ansible-inventory prints a template as written; only Ansible could render it. */
const TEMPLATE = /\{\{|\{%/;

/** Fleet-wide settings as inventory vars (set on `all` or the group released): same meaning as in fleet.json. */
const FLEET_VARS = {
  parallel: 'bgproxy_parallel',
  onFailure: 'bgproxy_on_failure',
  connectTimeoutS: 'bgproxy_connect_timeout',
  readyTimeoutMs: 'bgproxy_ready_timeout_ms',
} as const;

function runAnsible(cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      cmd,
      args,
      {
        maxBuffer: 64 * 1024 * 1024,
        // An inventory that Ansible cannot parse is an error here, not a warning and no hosts.
        env: { ...process.env, ANSIBLE_INVENTORY_UNPARSED_FAILED: 'true', ANSIBLE_NOCOLOR: '1', ANSIBLE_FORCE_COLOR: '0', ANSIBLE_LOCALHOST_WARNING: 'false' },
      },
      (err, stdout, stderr) => {
        if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') {
          reject(new BgError('BG_CONFIG', `--inventory needs ${cmd} (from ansible-core) on this machine: install it (apt install ansible-core, or pipx install ansible-core)`));
          return;
        }
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

/** The one line of Ansible's stderr that says what is wrong ("hosts.ini:3: Expected key=value…"). */
export function ansibleProblem(stderr: string): string {
  // Ansible wraps its messages at 80 columns: a line that starts no message continues one.
  const messages: string[] = [];
  for (const l of stderr.split('\n')) {
    if (l.trim() === '') continue;
    if (/^(\[[A-Z]+\]|ERROR!)/.test(l) || messages.length === 0) messages.push(l.trim());
    else messages[messages.length - 1] += ` ${l.trim()}`;
  }
  const lines = messages.map((l) => l.replace(/^\[WARNING\]:\s*/, '').replace(/^\*\s*/, '').trim());
  const located = lines.find((l) => /(^|: )\S+:\d+: /.test(l))?.replace(/^Failed to parse .* plugin: /, '');
  const failed = lines.find((l) => l.startsWith('Failed to parse '));
  const error = lines.find((l) => l.startsWith('ERROR!'))?.replace(/^ERROR!\s*/, '');
  return located ?? failed ?? error ?? lines.at(-1) ?? 'ansible-inventory failed';
}

function bad(file: string, host: string, key: string, problem: string): never {
  throw new BgError('BG_CONFIG', `${file}: ${host}: ${key}: ${problem}`);
}

function stringVar(file: string, host: string, vars: HostVars, key: string): string | undefined {
  const v = vars[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' && typeof v !== 'number') bad(file, host, key, `must be a string, got ${Array.isArray(v) ? 'a list' : typeof v}`);
  const s = String(v);
  if (TEMPLATE.test(s)) bad(file, host, key, `is a Jinja template ("${s}"): bgproxy reads the inventory without rendering it; set a plain value`);
  if (/[\0\r\n]/.test(s)) bad(file, host, key, 'must not contain NUL or line breaks');
  return s;
}

function intVar(file: string, host: string, vars: HostVars, key: string, min: number, max: number): number | undefined {
  const s = stringVar(file, host, vars, key);
  if (s === undefined) return undefined;
  const n = Number(s);
  if (!/^\d+$/.test(s.trim()) || n < min || n > max) bad(file, host, key, `must be an integer between ${min} and ${max}, got "${s}"`);
  return n;
}

/**
 * Splits ansible_ssh_common_args the way Ansible does (Python's shlex.split): words on
 * blanks, with '…', "…" and backslash quoting.
 */
export function shellWords(s: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === "'") {
      const end = s.indexOf("'", i + 1);
      if (end < 0) throw new Error('unterminated single quote');
      word += s.slice(i + 1, end);
      i = end;
      inWord = true;
    } else if (c === '"') {
      i++;
      for (; i < s.length && s[i] !== '"'; i++) {
        if (s[i] === '\\' && i + 1 < s.length && '\\"$`'.includes(s[i + 1]!)) i++;
        word += s[i];
      }
      if (i >= s.length) throw new Error('unterminated double quote');
      inWord = true;
    } else if (c === '\\' && i + 1 < s.length) {
      word += s[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  return words;
}

function serverOf(file: string, name: string, vars: HostVars, cwd: string): FleetServer {
  if (!/^[A-Za-z0-9][A-Za-z0-9._:-]*$/.test(name)) bad(file, name, 'inventory_hostname', 'must be letters, digits, ".", "_", ":" or "-" to name a fleet server');
  const connection = stringVar(file, name, vars, 'ansible_connection');
  if (connection !== undefined && !['ssh', 'smart', 'paramiko'].includes(connection)) {
    bad(file, name, 'ansible_connection', `is "${connection}": bgproxy fleet reaches its servers over ssh`);
  }
  const root = stringVar(file, name, vars, 'bgproxy_root');
  if (root === undefined || root.trim() === '') bad(file, name, 'bgproxy_root', `is not set (the bgproxy root on that host, as a host or group var; or leave ${name} out with --limit)`);
  if (!path.posix.isAbsolute(root)) bad(file, name, 'bgproxy_root', `must be an absolute path, got "${root}"`);
  const host = stringVar(file, name, vars, 'ansible_host') ?? stringVar(file, name, vars, 'ansible_ssh_host') ?? name;
  const user = stringVar(file, name, vars, 'ansible_user') ?? stringVar(file, name, vars, 'ansible_ssh_user');
  const ssh = user ? `${user}@${host}` : host;
  // ssh would read a leading "-" as an option: never let a destination become one.
  if (ssh.startsWith('-') || /\s/.test(ssh)) bad(file, name, user ? 'ansible_user' : 'ansible_host', `must make an ssh destination like deploy@web1, got "${ssh}"`);
  const port = intVar(file, name, vars, 'ansible_port', 1, 65535) ?? intVar(file, name, vars, 'ansible_ssh_port', 1, 65535) ?? null;
  const key = stringVar(file, name, vars, 'ansible_ssh_private_key_file') ?? stringVar(file, name, vars, 'ansible_private_key_file');
  const sshArgs: string[] = [];
  for (const k of ['ansible_ssh_common_args', 'ansible_ssh_extra_args']) {
    const v = stringVar(file, name, vars, k);
    if (v === undefined) continue;
    try {
      sshArgs.push(...shellWords(v));
    } catch (err) {
      bad(file, name, k, `${(err as Error).message} in "${v}"`);
    }
  }
  const command = stringVar(file, name, vars, 'bgproxy_command');
  if (command !== undefined && command.trim() === '') bad(file, name, 'bgproxy_command', 'must not be empty');
  return {
    name,
    ssh,
    port,
    // Ansible hands a relative key path to ssh as is: relative to where the command runs.
    identityFile: key === undefined ? null : key.startsWith('~') ? key : path.resolve(cwd, key),
    sshArgs,
    root,
    bgproxy: command ?? 'bgproxy',
  };
}

/** A fleet-wide var must be the same on every host released together. */
function fleetVar<T>(file: string, hosts: readonly [string, HostVars][], key: string, read: (host: string, vars: HostVars) => T | undefined, fallback: T): T {
  let value: T | undefined;
  let from = '';
  for (const [name, vars] of hosts) {
    const v = read(name, vars);
    if (v === undefined) continue;
    if (value !== undefined && v !== value) bad(file, name, key, `is ${String(v)} here but ${String(value)} on ${from}: set it once for every host released together`);
    value = v;
    from = name;
  }
  return value ?? fallback;
}

/** The fleet of `ansible-inventory -i FILE`, limited to PATTERN (Ansible's pattern language, default all). */
export async function loadInventory(file: string, limit?: string, cwd = process.cwd()): Promise<Readonly<FleetConfig>> {
  const abs = path.resolve(cwd, file);
  // A script (dynamic inventory) or a directory is fine; a missing path is a typo, not an empty fleet.
  try {
    statSync(abs);
  } catch {
    throw new BgError('BG_CONFIG', `no inventory ${abs} (pass --inventory FILE: an Ansible inventory)`);
  }
  if (limit !== undefined && (limit.trim() === '' || limit.startsWith('-'))) throw new BgError('BG_USAGE', `--limit must be an Ansible host pattern such as web or 'web:!web3', got "${limit}"`);
  // A --limit is resolved by Ansible itself (its pattern language: groups, "web:!web3", "~regex"…).
  const [list, hosts] = await Promise.all([
    runAnsible('ansible-inventory', ['-i', abs, '--list']),
    limit === undefined ? null : runAnsible('ansible', ['-i', abs, '--list-hosts', '--', limit]),
  ]);
  if (list.code !== 0) throw new BgError('BG_CONFIG', `${abs}: ${ansibleProblem(list.stderr)}`);
  if (hosts && hosts.code !== 0) throw new BgError('BG_CONFIG', `${abs}: ${ansibleProblem(hosts.stderr)}`);
  let parsed: InventoryList;
  try {
    parsed = JSON.parse(list.stdout) as InventoryList;
  } catch {
    throw new BgError('BG_CONFIG', `${abs}: ansible-inventory --list did not print JSON`);
  }
  const hostvars = parsed._meta?.hostvars ?? {};
  // "  hosts (2):" then one host per line, in the order a play would use them.
  const names = hosts
    ? hosts.stdout
        .split('\n')
        .slice(1)
        .map((l) => l.trim())
        .filter((l) => l !== '')
    : inventoryOrder(parsed);
  if (names.length === 0) {
    throw new BgError('BG_CONFIG', limit === undefined ? `${abs}: the inventory has no hosts` : `${abs}: no host matches --limit ${limit}`);
  }
  const selected = names.map((n): [string, HostVars] => [n, hostvars[n] ?? {}]);
  const servers = selected.map(([n, vars]) => serverOf(abs, n, vars, cwd));
  const str = (key: string) => (host: string, vars: HostVars) => stringVar(abs, host, vars, key);
  const num = (key: string, min: number, max: number) => (host: string, vars: HostVars) => intVar(abs, host, vars, key, min, max);
  const onFailure = fleetVar(abs, selected, FLEET_VARS.onFailure, str(FLEET_VARS.onFailure), 'rollback');
  if (onFailure !== 'rollback' && onFailure !== 'stay') bad(abs, selected[0]![0], FLEET_VARS.onFailure, `must be "rollback" or "stay", got "${onFailure}"`);
  return Object.freeze({
    file: abs,
    sshConfig: null,
    parallel: fleetVar(abs, selected, FLEET_VARS.parallel, num(FLEET_VARS.parallel, 1, 256), 4),
    onFailure,
    connectTimeoutS: fleetVar(abs, selected, FLEET_VARS.connectTimeoutS, num(FLEET_VARS.connectTimeoutS, 1, 300), 10),
    readyTimeoutMs: fleetVar(abs, selected, FLEET_VARS.readyTimeoutMs, num(FLEET_VARS.readyTimeoutMs, 100, 3_600_000), 120_000),
    servers,
  });
}
