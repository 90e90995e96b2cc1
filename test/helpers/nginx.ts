// A real nginx per test, plus the pieces around it: two color backends, a root with live/next
// links, and a load generator. nginx gets its own prefix, config, pid file and error log (nothing
// under /etc/nginx or /var/log/nginx), runs as our child with `daemon off`, and is handed an
// already-listening 127.0.0.1:0 socket through nginx's own NGINX="fd;" inheritance (the mechanism
// of its binary upgrade), so no port is picked, closed and re-bound by a racing neighbour.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import type { Test } from 'tap';
import { type Color, type Config, parseConfig } from '../../src/config.js';
import { writeRoles } from '../../src/layout/roles.js';
import { renderServerBlocks, writeInclude } from '../../src/nginx/conf.js';

export const NGINX_BIN = '/usr/sbin/nginx';

export interface NginxSettings {
  port: number;
  testCommand: string;
  reloadCommand: string;
  pidFile: string;
}

export interface NginxInstance extends NginxSettings {
  prefix: string;
  errorLog: string;
  masterPid: number;
}

function mainConf(prefix: string, site: string, pidFile: string): string {
  const tmp = (name: string): string => path.join(prefix, 'tmp', name);
  return `daemon off;
master_process on;
worker_processes 2;
user root;
pid ${pidFile};
error_log ${path.join(prefix, 'error.log')} notice;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path ${tmp('body')};
    proxy_temp_path ${tmp('proxy')};
    fastcgi_temp_path ${tmp('fastcgi')};
    uwsgi_temp_path ${tmp('uwsgi')};
    scgi_temp_path ${tmp('scgi')};
    include ${site};
}
`;
}

async function listProcesses(): Promise<{ pid: number; ppid: number; args: string }[]> {
  const r = await execa('ps', ['-e', '-o', 'pid=,ppid=,args='], { reject: false });
  return r.stdout.split('\n').flatMap((line) => {
    const m = /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(line);
    return m ? [{ pid: Number(m[1]), ppid: Number(m[2]), args: m[3] ?? '' }] : [];
  });
}

/** Processes of this instance: its master, the master's children, any master named with the prefix. */
async function processesOf(masterPid: number, prefix: string): Promise<number[]> {
  return (await listProcesses())
    .filter((p) => p.pid === masterPid || p.ppid === masterPid || (p.args.includes('nginx') && p.args.includes(prefix)))
    .map((p) => p.pid);
}

/** A root's config and the site file nginx should load for it (e.g. what `bgproxy nginx-config` printed). */
export interface NginxSite {
  config: Config;
  site: string;
}

/**
 * Starts nginx for `makeConfig(settings)`: the site file is renderServerBlocks(config), or the
 * `site` it returns. The root's include files must exist first (see makeRoot). Stops it on
 * teardown and checks nothing is left.
 *
 * The prefix is a temp dir of its own, removed by this teardown once the master has exited: under
 * t.testdir(), tap removed it while a reloaded nginx still made its temp dirs there (ENOTEMPTY).
 */
export async function startNginx(
  t: Test,
  makeConfig: (s: NginxSettings) => Config | NginxSite | Promise<Config | NginxSite>,
): Promise<{ nginx: NginxInstance; config: Config }> {
  const prefix = mkdtempSync(path.join(os.tmpdir(), 'bgproxy-nginx-'));
  mkdirSync(path.join(prefix, 'tmp'), { recursive: true });
  const listener = net.createServer();
  await new Promise<void>((resolve) => listener.listen({ port: 0, host: '127.0.0.1' }, resolve));
  const port = (listener.address() as net.AddressInfo).port;
  const conf = path.join(prefix, 'nginx.conf');
  const errorLog = path.join(prefix, 'error.log');
  const pidFile = path.join(prefix, 'nginx.pid');
  const base = `${NGINX_BIN} -p ${prefix}/ -c ${conf} -e ${errorLog}`;
  const settings = { port, testCommand: `${base} -t`, reloadCommand: `${base} -s reload`, pidFile };
  let made: Config | NginxSite;
  try {
    made = await makeConfig(settings);
  } catch (err) {
    listener.close();
    rmSync(prefix, { recursive: true, force: true });
    throw err;
  }
  const config = 'site' in made ? made.config : made;
  const site = path.join(prefix, 'site.conf');
  writeFileSync(site, 'site' in made ? made.site : renderServerBlocks(config));
  writeFileSync(conf, mainConf(prefix, site, pidFile));

  // libuv's listening fd becomes nginx's fd 3; our copy is closed right after, before any traffic.
  const fd = (listener as unknown as { _handle: { fd: number } })._handle.fd;
  const child = spawn(NGINX_BIN, ['-p', `${prefix}/`, '-c', conf, '-e', errorLog], {
    stdio: ['ignore', 'ignore', 'pipe', fd],
    env: { ...process.env, NGINX: '3;' },
  });
  listener.close();
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const masterPid = child.pid ?? 0;
  // If the test process dies without teardown: SIGTERM makes the master stop its workers too
  // (a SIGKILLed master leaves them running, orphaned).
  const killOnExit = (): void => {
    try {
      process.kill(masterPid, 'SIGTERM');
    } catch {}
  };
  process.once('exit', killOnExit);

  // SIGQUIT (what `nginx -s quit` sends) straight to our child, as `-s quit` would.
  t.teardown(async () => {
    process.removeListener('exit', killOnExit);
    const seen = new Set(await processesOf(masterPid, prefix));
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGQUIT');
      const timer = setTimeout(() => child.kill('SIGTERM'), 5000);
      await exited;
      clearTimeout(timer);
    }
    const remaining = async (): Promise<number[]> => {
      const now = await listProcesses();
      for (const pid of await processesOf(masterPid, prefix)) seen.add(pid);
      return now.filter((p) => seen.has(p.pid) && p.args.startsWith('nginx')).map((p) => p.pid);
    };
    let left = await remaining();
    for (let i = 0; i < 40 && left.length > 0; i++) {
      for (const pid of left) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {}
      }
      await new Promise((r) => setTimeout(r, 50));
      left = await remaining();
    }
    if (left.length > 0) throw new Error(`nginx processes of ${prefix} survived teardown: ${left.join(' ')}`);
    rmSync(prefix, { recursive: true, force: true });
  });

  // The socket already listens, so this request waits in the backlog until a worker accepts it.
  const ready = await Promise.race([
    request({ port, host: config.hosts.live[0] ?? 'localhost', path: '/', timeoutMs: 5000 }).then((r) => r.error === undefined),
    exited.then(() => false),
  ]);
  if (!ready) {
    let log = '';
    try {
      log = readFileSync(errorLog, 'utf8');
    } catch {}
    throw new Error(`nginx did not start: ${stderr}\n${log}`);
  }
  return { nginx: { ...settings, prefix, errorLog, masterPid }, config };
}

/** A root with blue/ and green/ (etc/ each), live -> blue, next -> green, both include files. */
export function makeRoot(root: string, config?: Config): void {
  for (const c of ['blue', 'green'] as const) mkdirSync(path.join(root, c, 'etc'), { recursive: true });
  writeRoles(root, 'blue');
  if (config) {
    writeInclude(config, 'blue');
    writeInclude(config, 'green');
  }
}

export interface Backend {
  color: Color;
  port: number;
  server: http.Server;
  requests: number;
  /** TCP connections the app accepted (nginx's upstream keep-alive shows as fewer than requests). */
  connections: number;
}

/**
 * A tiny app for one color: answers every request with its color's name, GET /headers with the
 * request headers it received (JSON), and a websocket-style upgrade with 101 then its color.
 */
export async function startBackend(t: Test, color: Color): Promise<Backend> {
  const b: Backend = { color, port: 0, server: http.createServer(), requests: 0, connections: 0 };
  b.server.on('connection', () => b.connections++);
  b.server.on('request', (req, res) => {
    b.requests++;
    req.resume();
    res.setHeader('content-type', 'text/plain');
    res.end(req.url === '/headers' ? JSON.stringify(req.headers) : color);
  });
  b.server.on('upgrade', (_req, socket: net.Socket) => {
    socket.end(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n${color}`);
  });
  await new Promise<void>((resolve) => b.server.listen({ port: 0, host: '127.0.0.1' }, resolve));
  t.teardown(() => new Promise<void>((resolve) => {
    b.server.closeAllConnections();
    b.server.close(() => resolve());
  }));
  b.port = (b.server.address() as net.AddressInfo).port;
  return b;
}

/** The raw config of a test root in nginx mode; `extra` is merged over the top level. */
export function nginxConfig(
  root: string,
  s: NginxSettings,
  ports: Record<Color, number>,
  extra: { nginx?: Record<string, unknown>; [k: string]: unknown } = {},
): Config {
  const { nginx, ...rest } = extra;
  return parseConfig(
    {
      listen: `127.0.0.1:${s.port}`,
      mode: 'nginx',
      hosts: { live: ['shop.test', 'www.shop.test'], next: ['next.shop.test'] },
      colors: { blue: { port: ports.blue }, green: { port: ports.green } },
      app: { health: { path: '/', timeoutMs: 1000 } },
      drainTimeoutMs: 5000,
      nginx: { testCommand: s.testCommand, reloadCommand: s.reloadCommand, pidFile: s.pidFile, ...nginx },
      ...rest,
    },
    root,
  );
}

export interface Reply {
  status: number;
  body: string;
  error?: string;
}

export function request(opts: {
  port: number;
  host: string;
  path: string;
  timeoutMs?: number;
  agent?: http.Agent | false;
}): Promise<Reply> {
  return new Promise((resolve) => {
    const req = http.request(
      { host: '127.0.0.1', port: opts.port, path: opts.path, headers: { host: opts.host }, agent: opts.agent ?? false },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', (e: NodeJS.ErrnoException) => resolve({ status: 0, body, error: e.code ?? e.message }));
      },
    );
    req.setTimeout(opts.timeoutMs ?? 5000, () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ status: 0, body: '', error: e.code ?? e.message }));
    req.end();
  });
}

export interface LoadResult {
  total: number;
  colors: Record<string, number>;
  /** "ECONNRESET", "HTTP 502", … -> count. */
  errors: Record<string, number>;
  failed: number;
}

/**
 * `concurrency` clients each sending one request after another to the host through nginx until
 * stop() is called (or maxMs passes): a fresh connection per request, or shared keep-alive ones.
 */
/**
 * `paceMs`: each client's pause between requests. Unpaced, 50 clients through nginx open ~28,000
 * connections in a few seconds; their TIME_WAITs fill the ephemeral port range and make later
 * tests on this machine fail to connect.
 */
export function startLoad(opts: {
  port: number;
  host: string;
  concurrency: number;
  keepAlive: boolean;
  maxMs: number;
  paceMs?: number;
  /** Each request's own bound (default 5 s): a wait longer than this is a failure. */
  timeoutMs?: number;
  /** Which replies count as served (default: 200); the others are failures. */
  ok?: (r: Reply) => boolean;
  /** Sees every reply with the performance.now() its request started at. */
  onReply?: (r: Reply, startedAt: number) => void;
}): {
  stop: () => Promise<LoadResult>;
} {
  const ok = opts.ok ?? ((r: Reply) => r.status === 200);
  const agent = opts.keepAlive ? new http.Agent({ keepAlive: true, maxSockets: opts.concurrency }) : false;
  const result: LoadResult = { total: 0, colors: {}, errors: {}, failed: 0 };
  const until = performance.now() + opts.maxMs;
  let stopped = false;
  const client = async (): Promise<void> => {
    while (!stopped && performance.now() < until) {
      const startedAt = performance.now();
      const r = await request({ port: opts.port, host: opts.host, path: '/', agent, timeoutMs: opts.timeoutMs ?? 5000 });
      result.total++;
      opts.onReply?.(r, startedAt);
      const bad = r.error ?? (ok(r) ? undefined : `HTTP ${r.status}`);
      if (bad) {
        result.failed++;
        result.errors[bad] = (result.errors[bad] ?? 0) + 1;
      } else {
        result.colors[r.body] = (result.colors[r.body] ?? 0) + 1;
      }
      if (opts.paceMs) await new Promise((r) => setTimeout(r, opts.paceMs));
    }
  };
  const clients = Array.from({ length: opts.concurrency }, client);
  return {
    stop: async () => {
      stopped = true;
      await Promise.all(clients);
      if (agent) agent.destroy();
      return result;
    },
  };
}

export interface NginxFixture {
  root: string;
  nginx: NginxInstance;
  config: Config;
  blue: Backend;
  green: Backend;
}

/** Two backends, a root (live -> blue) under `dir` and nginx in front, all torn down with t. */
export async function nginxFixture(
  t: Test,
  dir: string,
  extra: Parameters<typeof nginxConfig>[3] = {},
): Promise<NginxFixture> {
  const root = path.join(dir, 'root');
  mkdirSync(root, { recursive: true });
  const blue = await startBackend(t, 'blue');
  const green = await startBackend(t, 'green');
  const { nginx, config } = await startNginx(t, (s) => {
    const c = nginxConfig(root, s, { blue: blue.port, green: green.port }, extra);
    makeRoot(root, c);
    return c;
  });
  return { root, nginx, config, blue, green };
}
