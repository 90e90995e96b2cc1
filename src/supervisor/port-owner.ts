// Who listens on a color's port. Another site's app, or the old recipe's gunicorn still
// running, answers the health probe as well as ours would: without asking the kernel who
// holds the listening socket, bgproxy would call a foreign process healthy and route to it.
// Linux only (/proc/net/tcp{,6} give the socket inodes, /proc/PID/fd the processes holding
// them); elsewhere every answer is "cannot tell", and the checks are skipped.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

/** A process holding a listening socket. */
export interface PortHolder {
  pid: number;
  /** Its command line, shortened for one-line messages. */
  command: string;
  /** Its working directory, '' when it cannot be read. */
  cwd: string;
}

export interface PortListeners {
  /** Socket inodes of every listener on the port, any address. */
  all: Set<string>;
  /** Those a connection to 127.0.0.1 reaches (0.0.0.0, 127.0.0.1, ::, ::ffff:127.0.0.1): what the probe and the proxy talk to. */
  local: Set<string>;
}

const COMMAND_MAX = 80;
const WILDCARD4 = '00000000';
const LOOPBACK4 = '0100007F';
const WILDCARD6 = '0'.repeat(32);
const MAPPED_LOOPBACK6 = '0000000000000000FFFF00000100007F';
const LISTEN = '0A';

/**
 * The listening sockets on `port`, or null where /proc/net is not there (not Linux).
 * Asynchronous: the kernel writes a line for every TCP socket of the host, tens of
 * milliseconds on a busy one, which must not stall the proxy's event loop.
 */
export async function portListeners(port: number): Promise<PortListeners | null> {
  const sockets = await listeningSockets();
  if (sockets === null) return null;
  const all = new Set<string>();
  const local = new Set<string>();
  for (const s of sockets) {
    if (s.port !== port) continue;
    all.add(s.inode);
    if (s.addr === WILDCARD4 || s.addr === LOOPBACK4 || s.addr === WILDCARD6 || s.addr === MAPPED_LOOPBACK6) local.add(s.inode);
  }
  return { all, local };
}

/** One listening TCP socket of the host: its address as /proc writes it (hex), port and inode. */
interface ListeningSocket {
  addr: string;
  port: number;
  inode: string;
}

/** Every listening TCP socket in /proc/net/tcp{,6}, or null where neither can be read (not Linux). */
async function listeningSockets(): Promise<ListeningSocket[] | null> {
  const out: ListeningSocket[] = [];
  let readAny = false;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = await readFile(file, 'latin1');
    } catch {
      continue; // tcp6 is absent when IPv6 is off
    }
    readAny = true;
    for (const line of text.split('\n')) {
      // "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode"
      const f = line.trim().split(/\s+/);
      if (f[3] !== LISTEN || f[9] === undefined) continue;
      const [addr, p] = (f[1] ?? '').split(':');
      if (addr === undefined || p === undefined) continue;
      out.push({ addr, port: Number.parseInt(p, 16), inode: f[9] });
    }
  }
  return readAny ? out : null;
}

/** The socket inodes `pid` has open ("socket:[123]" links in /proc/PID/fd). */
function socketInodes(pid: number): Set<string> {
  const out = new Set<string>();
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return out; // gone, or another user's (then we cannot tell, and say so)
  }
  for (const fd of fds) {
    let link: string;
    try {
      link = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue;
    }
    if (link.startsWith('socket:[')) out.add(link.slice(8, -1));
  }
  return out;
}

function describe(pid: number): PortHolder {
  let command = '';
  try {
    // Arguments may hold newlines (node -e '...'): one line for one-line messages.
    command = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/[\0\s]+/g, ' ').trim();
  } catch {}
  if (command.length > COMMAND_MAX) command = `${command.slice(0, COMMAND_MAX - 3)}...`;
  let cwd = '';
  try {
    cwd = readlinkSync(`/proc/${pid}/cwd`);
  } catch {}
  return { pid, command: command || '?', cwd };
}

function allPids(): number[] {
  try {
    return readdirSync('/proc')
      .filter((n) => /^\d+$/.test(n))
      .map(Number);
  } catch {
    return [];
  }
}

/** The processes holding any of `inodes`, lowest pid first (the parent of a forked server, usually). */
export function holdersOf(inodes: Set<string>, pids: Iterable<number> = allPids()): PortHolder[] {
  if (inodes.size === 0) return [];
  const out: PortHolder[] = [];
  for (const pid of pids) {
    for (const inode of socketInodes(pid)) {
      if (inodes.has(inode)) {
        out.push(describe(pid));
        break;
      }
    }
  }
  return out.sort((a, b) => a.pid - b.pid);
}

/**
 * Who listens on `port` now: null when nobody does (or on a system without /proc);
 * `holder` null when the socket's process cannot be seen (another user's, without root).
 */
export async function whoListens(port: number): Promise<{ holder: PortHolder | null } | null> {
  const l = await portListeners(port);
  if (l === null || l.all.size === 0) return null;
  return { holder: holdersOf(l.all)[0] ?? null };
}

/** "pid 123 (gunicorn -b 127.0.0.1:8889 app:app)", or what we can say when it is hidden. */
export function formatHolder(holder: PortHolder | null): string {
  return holder ? `pid ${holder.pid} (${holder.command})` : 'a process bgproxy cannot see (another user\'s)';
}

/** Pids of `leader`'s process tree: its process group, and any descendant that left it. */
export function processTree(leader: number): number[] {
  const parent = new Map<number, number>();
  const tree: number[] = [];
  for (const pid of allPids()) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue;
    }
    // "pid (comm) state ppid pgrp …": comm may hold spaces and parentheses.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (f[0] === 'Z' || f[0] === 'X') continue;
    parent.set(pid, Number(f[1]));
    if (Number(f[2]) === leader) tree.push(pid);
  }
  const inTree = new Set(tree);
  for (const pid of parent.keys()) {
    if (inTree.has(pid)) continue;
    // Walk up at most a few dozen levels: a descendant that called setsid() is still ours.
    for (let p = parent.get(pid), depth = 0; p !== undefined && p > 1 && depth < 64; p = parent.get(p), depth++) {
      if (p === leader || inTree.has(p)) {
        tree.push(pid);
        break;
      }
    }
  }
  return tree;
}

/** "0100007F" (/proc/net/tcp, host byte order per 32-bit word) -> "127.0.0.1"; IPv6 as "[::1]". */
function procAddress(hex: string): string {
  const words = hex.match(/.{8}/g) ?? [];
  const bytes = words.flatMap((w) => (w.match(/../g) ?? []).reverse().map((b) => Number.parseInt(b, 16)));
  if (bytes.length === 4) return bytes.join('.');
  if (bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 255 && bytes[11] === 255) return bytes.slice(12).join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
  // Compress the longest run of zero groups, as people write IPv6 addresses.
  const joined = groups.join(':').replace(/(^|:)0(:0)+(:|$)/, '::');
  return `[${joined}]`;
}

/** A listener of an app's process tree on some port other than its own. */
export interface ElsewhereListener {
  pid: number;
  /** "127.0.0.1:8000", "0.0.0.0:8000", "[::]:8000" */
  address: string;
  port: number;
}

/**
 * The TCP listeners held by `leader`'s process tree on ports other than `port`: an app
 * that ignores $PORT (listens on its framework's default, say) never answers the probe,
 * and without this the start just timed out. [] when there are none, null without /proc.
 */
export async function listensElsewhere(leader: number, port: number): Promise<ElsewhereListener[] | null> {
  const sockets = await listeningSockets();
  if (sockets === null) return null;
  const byInode = new Map<string, { address: string; port: number }>();
  for (const s of sockets) {
    if (s.port !== port) byInode.set(s.inode, { address: `${procAddress(s.addr)}:${s.port}`, port: s.port });
  }
  const out: ElsewhereListener[] = [];
  for (const pid of processTree(leader).sort((a, b) => a - b)) {
    for (const inode of socketInodes(pid)) {
      const l = byInode.get(inode);
      if (l && !out.some((o) => o.address === l.address)) out.push({ pid, ...l });
    }
  }
  return out;
}

export type Ownership =
  | { kind: 'ours' }
  /** Nothing listens where the probe connects. */
  | { kind: 'none' }
  | { kind: 'foreign'; holder: PortHolder | null }
  /** No /proc: ownership cannot be checked here. */
  | { kind: 'unknown' };

/**
 * Whether what answers on 127.0.0.1:`port` belongs to `leader`'s process tree: every
 * listener there must be held by one of its processes. `verified` remembers the inodes
 * found ours, so a steady app costs one read of /proc/net/tcp per check, not a scan of
 * every process's descriptors.
 */
export async function ownership(port: number, leader: number, verified?: Set<string>): Promise<Ownership> {
  const l = await portListeners(port);
  if (l === null) return { kind: 'unknown' };
  if (l.local.size === 0) return { kind: 'none' };
  if (verified && [...l.local].every((i) => verified.has(i))) return { kind: 'ours' };
  const ours = new Set<string>();
  for (const pid of processTree(leader)) for (const i of socketInodes(pid)) ours.add(i);
  const foreign = new Set([...l.local].filter((i) => !ours.has(i)));
  if (foreign.size === 0) {
    verified?.clear();
    for (const i of l.local) verified?.add(i);
    return { kind: 'ours' };
  }
  return { kind: 'foreign', holder: holdersOf(foreign)[0] ?? null };
}
