// A real HAProxy (Debian's haproxy) in front of a fleet: one frontend on a 127.0.0.1:0
// listener handed over as fd 3 (`bind fd@3`, so no port is guessed), one roundrobin
// backend of the servers' bgproxy fronts with HTTP health checks on the live host, and
// the runtime API on a unix socket (what an operator uses to take a server out).
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { tempDir } from './root.js';

type T = { teardown(fn: () => unknown): void };

export const HAPROXY_BIN = '/usr/sbin/haproxy';

export interface HaproxyInstance {
  port: number;
  /** The runtime API socket (`echo "show servers state" | socat - SOCKET`). */
  socket: string;
  config: string;
  /** One runtime API command, its answer. */
  command(line: string): Promise<string>;
  log(): string;
}

/**
 * The config used in the README's "Several servers": keep-alive on both sides, health
 * checks with the live host's name (bgproxy routes by Host), retries and redispatch for a
 * connection that a backend refused.
 */
export function haproxyConfig(opts: { socket: string; host: string; servers: Array<{ name: string; address: string }> }): string {
  return [
    'global',
    `    stats socket ${opts.socket} mode 600 level admin`,
    '    maxconn 512',
    '',
    'defaults',
    '    mode http',
    '    option http-keep-alive',
    '    timeout connect 5s',
    '    timeout client 30s',
    '    timeout server 60s',
    '    timeout http-keep-alive 10s',
    '    retries 3',
    '    option redispatch',
    '',
    'frontend shop',
    '    bind fd@3',
    '    default_backend web',
    '',
    'backend web',
    '    balance roundrobin',
    '    option httpchk',
    `    http-check send meth GET uri /health ver HTTP/1.1 hdr Host ${opts.host}`,
    ...opts.servers.map((s) => `    server ${s.name} ${s.address} check inter 1s fall 3 rise 2`),
    '',
  ].join('\n');
}

export async function startHaproxy(t: T, opts: { host: string; servers: Array<{ name: string; port: number }> }): Promise<HaproxyInstance> {
  const dir = tempDir(t, 'bghap-');
  const socket = path.join(dir, 'admin.sock');
  const config = path.join(dir, 'haproxy.cfg');
  writeFileSync(config, haproxyConfig({ socket, host: opts.host, servers: opts.servers.map((s) => ({ name: s.name, address: `127.0.0.1:${s.port}` })) }));
  const listener = net.createServer();
  await new Promise<void>((resolve) => listener.listen({ port: 0, host: '127.0.0.1' }, resolve));
  const port = (listener.address() as net.AddressInfo).port;
  // libuv's listening fd becomes HAProxy's fd 3; our copy is closed once it has it.
  const fd = (listener as unknown as { _handle: { fd: number } })._handle.fd;
  // -db: foreground, no daemon; -W would add a master process we do not need.
  const child = spawn(HAPROXY_BIN, ['-db', '-f', config], { stdio: ['ignore', 'pipe', 'pipe', fd] });
  listener.close();
  let log = '';
  for (const s of [child.stdout, child.stderr]) s?.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-8000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const killOnExit = (): void => {
    child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  t.teardown(async () => {
    process.removeListener('exit', killOnExit);
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  });
  const command = (line: string): Promise<string> =>
    new Promise((resolve, reject) => {
      const c = net.connect(socket);
      let out = '';
      c.setEncoding('utf8');
      c.on('data', (d: string) => (out += d));
      c.once('error', reject);
      c.once('close', () => resolve(out));
      c.end(`${line}\n`);
    });
  // Up once the runtime API answers and every server passed its health check.
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`haproxy exited with ${child.exitCode}: ${log}`);
    const state = await command('show servers state web').catch(() => '');
    const up = state.split('\n').filter((l) => / web \d+ \S+ 127\.0\.0\.1 2 /.test(l)).length;
    if (up === opts.servers.length) break;
    if (Date.now() > deadline) throw new Error(`haproxy: not every server up in 30 s:\n${state}\n${log}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return { port, socket, config, command, log: () => log };
}
