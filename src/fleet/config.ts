// ROOT/fleet.json (or --fleet FILE): the servers a fleet release goes to, each an ssh
// destination with the bgproxy root it runs there. Validated once, like bgproxy.json: the
// first problem is one line naming the key (BG_CONFIG, exit 2).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseJsonFile } from '../config-json.js';
import { int, obj, oneOf, type Raw, str } from '../config-readers.js';
import { BgError, isBgError } from '../errors.js';

export const FLEET_FILE = 'fleet.json';

export interface FleetServer {
  /** Prefixes its lines and names it in every message. */
  name: string;
  /** An ssh destination (`deploy@web1`) or a Host alias of the ssh config. */
  ssh: string;
  port: number | null;
  /** Absolute (relative ones are resolved against the fleet file's directory). */
  identityFile: string | null;
  /** More ssh options, before the destination (an inventory's ansible_ssh_common_args). */
  sshArgs: readonly string[];
  /** The bgproxy root on that server. */
  root: string;
  /** The remote command that runs bgproxy (a shell command line, e.g. "sudo -u shop bgproxy"). */
  bgproxy: string;
}

export interface FleetConfig {
  file: string;
  /** Passed as ssh -F; absolute. */
  sshConfig: string | null;
  /** How many servers deploy at once (a cutover gates every server at once regardless). */
  parallel: number;
  /** A failure after some servers switched: roll them back ("rollback") or leave them ("stay"). */
  onFailure: 'rollback' | 'stay';
  /** ssh ConnectTimeout, seconds. */
  connectTimeoutS: number;
  /** How long every server has to be ready to switch before the cutover is called off. */
  readyTimeoutMs: number;
  servers: readonly Readonly<FleetServer>[];
}

const TOP_KEYS = ['sshConfig', 'parallel', 'onFailure', 'connectTimeoutS', 'readyTimeoutMs', 'servers'] as const;
const SERVER_KEYS = ['name', 'ssh', 'port', 'identityFile', 'root', 'bgproxy'] as const;

/** --fleet FILE, else ROOT/fleet.json (ROOT from --root, BGPROXY_ROOT or the current directory). */
export function fleetPath(flags: { fleet?: string; root?: string }, env: NodeJS.ProcessEnv = process.env): string {
  if (flags.fleet) return path.resolve(flags.fleet);
  return path.join(path.resolve(flags.root ?? env.BGPROXY_ROOT ?? process.cwd()), FLEET_FILE);
}

export function loadFleet(file: string): Readonly<FleetConfig> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new BgError('BG_CONFIG', `no fleet file ${file} (write one, or pass --fleet FILE)`);
    throw new BgError('BG_CONFIG', `cannot read ${file}: ${(err as Error).message}`);
  }
  return parseFleet(parseJsonFile(text, file, ''), file);
}

/** Validates a parsed fleet file; errors read "FILE: servers[1].root: must be an absolute path". */
export function parseFleet(raw: unknown, file: string): Readonly<FleetConfig> {
  try {
    return Object.freeze(parse(raw, path.resolve(file)));
  } catch (err) {
    if (isBgError(err, 'BG_CONFIG')) throw new BgError('BG_CONFIG', err.message.replace(/^config: /, `${file}: `));
    throw err;
  }
}

function bad(key: string, problem: string): never {
  throw new BgError('BG_CONFIG', `config: ${key}: ${problem}`);
}

function parse(raw: Raw, file: string): FleetConfig {
  const dir = path.dirname(file);
  const o = obj(raw, '', TOP_KEYS);
  if (!Array.isArray(o.servers) || o.servers.length === 0) bad('servers', 'must be a non-empty list of servers');
  const servers = o.servers.map((s, i) => parseServer(s, `servers[${i}]`, dir));
  const names = new Set<string>();
  for (const [i, s] of servers.entries()) {
    if (names.has(s.name)) bad(`servers[${i}].name`, `"${s.name}" is used twice`);
    names.add(s.name);
  }
  return {
    file,
    sshConfig: o.sshConfig === undefined ? null : path.resolve(dir, str(o.sshConfig, 'sshConfig', { nonEmpty: true })),
    parallel: o.parallel === undefined ? 4 : int(o.parallel, 'parallel', 1, 256),
    onFailure: o.onFailure === undefined ? 'rollback' : oneOf(o.onFailure, 'onFailure', ['rollback', 'stay'] as const),
    connectTimeoutS: o.connectTimeoutS === undefined ? 10 : int(o.connectTimeoutS, 'connectTimeoutS', 1, 300),
    readyTimeoutMs: o.readyTimeoutMs === undefined ? 120_000 : int(o.readyTimeoutMs, 'readyTimeoutMs', 100, 3_600_000),
    servers,
  };
}

function parseServer(raw: Raw, key: string, dir: string): FleetServer {
  const o = obj(raw, key, SERVER_KEYS);
  if (o.ssh === undefined) bad(`${key}.ssh`, 'is required (an ssh destination such as deploy@web1)');
  if (o.root === undefined) bad(`${key}.root`, 'is required (the bgproxy root on that server)');
  const ssh = str(o.ssh, `${key}.ssh`, { nonEmpty: true });
  // ssh would read a leading "-" as an option: never let a destination become one.
  if (ssh.startsWith('-') || /\s/.test(ssh)) bad(`${key}.ssh`, `must be a destination like deploy@web1, got "${ssh}"`);
  const root = str(o.root, `${key}.root`, { nonEmpty: true });
  if (!path.posix.isAbsolute(root)) bad(`${key}.root`, `must be an absolute path, got "${root}"`);
  const name = o.name === undefined ? ssh.replace(/^.*@/, '') : str(o.name, `${key}.name`, { nonEmpty: true });
  if (!/^[A-Za-z0-9][A-Za-z0-9._:-]*$/.test(name)) bad(`${key}.name`, `must be letters, digits, ".", "_", ":" or "-", got "${name}"`);
  const identity = o.identityFile === undefined ? null : str(o.identityFile, `${key}.identityFile`, { nonEmpty: true });
  return {
    name,
    ssh,
    port: o.port === undefined ? null : int(o.port, `${key}.port`, 1, 65535),
    identityFile: identity === null ? null : identity.startsWith('~') ? identity : path.resolve(dir, identity),
    sshArgs: [],
    root,
    bgproxy: o.bgproxy === undefined ? 'bgproxy' : str(o.bgproxy, `${key}.bgproxy`, { nonEmpty: true }),
  };
}
