// A real ACME CA for tests: pebble (Debian package) validating against bgproxy's own
// listeners, and pebble-challtestsrv as the DNS server that says which test hosts resolve
// (to 127.0.0.1). Both listen on port 0; their ports are read back from the kernel (ss),
// so nothing is guessed. Each registers its own cleanup.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { tempDir } from './root.js';

type T = { teardown(fn: () => unknown): void };

const wait = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** TCP (or UDP) ports `pid` listens on, from ss. */
function listeningPorts(pid: number, proto: 't' | 'u'): number[] {
  const out = execFileSync('ss', [`-Hn${proto}lp`], { encoding: 'utf8' });
  const ports: number[] = [];
  for (const line of out.split('\n')) {
    if (!line.includes(`pid=${pid},`)) continue;
    const m = /\s(?:\S*):(\d+)\s+\S+:\*/.exec(line);
    if (m) ports.push(Number(m[1]));
  }
  return ports;
}

async function waitPorts(child: ChildProcess, proto: 't' | 'u', n: number, what: string, log: () => string): Promise<number[]> {
  const until = Date.now() + 10_000;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`${what} exited (${child.exitCode}): ${log()}`);
    const ports = listeningPorts(child.pid!, proto);
    if (ports.length >= n) return ports;
    await wait(25);
  }
  throw new Error(`${what} did not listen within 10 s: ${log()}`);
}

function run(t: T, cmd: string, args: string[], env: Record<string, string> = {}): { child: ChildProcess; log: () => string } {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
  child.stderr?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
  t.teardown(() => stop(child));
  return { child, log: () => out };
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

function httpJson(url: string, body: unknown): Promise<void> {
  return fetch(url, { method: 'POST', body: JSON.stringify(body) }).then(async (r) => {
    if (!r.ok) throw new Error(`${url}: ${r.status} ${await r.text()}`);
  });
}

export interface DnsServer {
  /** "127.0.0.1:PORT" for tls.acme.dnsServers and pebble's -dnsserver. */
  address: string;
  /** Makes `host` resolve to 127.0.0.1 (nothing resolves until added). */
  addHost(host: string): Promise<void>;
}

export async function startDns(t: T): Promise<DnsServer> {
  const { child, log } = run(t, 'pebble-challtestsrv', [
    '-defaultIPv4',
    '',
    '-defaultIPv6',
    '',
    '-dns01',
    '127.0.0.1:0',
    '-http01',
    '',
    '-https01',
    '',
    '-tlsalpn01',
    '',
    '-management',
    '127.0.0.1:0',
  ]);
  const [dns] = await waitPorts(child, 'u', 1, 'pebble-challtestsrv', log);
  // Its DNS listens on TCP too, on another port: the management one is the one speaking HTTP.
  let mgmt = 0;
  for (const port of await waitPorts(child, 't', 2, 'pebble-challtestsrv', log)) {
    const answered = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(1000) }).then(
      () => true,
      () => false,
    );
    if (answered) mgmt = port;
  }
  if (!mgmt) throw new Error(`pebble-challtestsrv: no management listener: ${log()}`);
  return {
    address: `127.0.0.1:${dns}`,
    addHost: (host) => httpJson(`http://127.0.0.1:${mgmt}/add-a`, { host, addresses: ['127.0.0.1'] }),
  };
}

export interface Pebble {
  directory: string;
  /** pebble's own TLS certificate (its directory's https), for tls.acme.caBundle. */
  caBundle: string;
  /** The root that signs what pebble issues (verify HTTPS responses against it). */
  root(): Promise<Buffer>;
  child: ChildProcess;
  stop(): Promise<void>;
}

export interface PebbleOptions {
  /** The port pebble's VA sends HTTP-01 requests to: bgproxy's plain listener. */
  httpPort: number;
  /** The port of TLS-ALPN-01: bgproxy's TLS listener. */
  tlsPort: number;
  dns: string;
  /** Lifetime of the certificates it issues, in seconds. */
  validitySeconds?: number;
}

export async function startPebble(t: T, o: PebbleOptions): Promise<Pebble> {
  const dir = tempDir(t, 'bg-pebble-');
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'key.pem', '-out', 'cert.pem', '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'],
    { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const config = {
    pebble: {
      listenAddress: '127.0.0.1:0',
      managementListenAddress: '127.0.0.1:0',
      certificate: path.join(dir, 'cert.pem'),
      privateKey: path.join(dir, 'key.pem'),
      httpPort: o.httpPort,
      tlsPort: o.tlsPort,
      ocspResponderURL: '',
      externalAccountBindingRequired: false,
      ...(o.validitySeconds ? { certificateValidityPeriod: o.validitySeconds } : {}),
    },
  };
  writeFileSync(path.join(dir, 'pebble.json'), JSON.stringify(config));
  const { child, log } = run(t, 'pebble', ['-config', path.join(dir, 'pebble.json'), '-dnsserver', o.dns], {
    // Real validation (PEBBLE_VA_ALWAYS_VALID unset), without its random sleeps; every
    // nonce good and no authorization reused, so each order really validates.
    PEBBLE_VA_NOSLEEP: '1',
    PEBBLE_WFE_NONCEREJECT: '0',
    PEBBLE_AUTHZREUSE: '0',
  });
  const ports = await waitPorts(child, 't', 2, 'pebble', log);
  const ca = readFileSync(path.join(dir, 'cert.pem'));
  const get = (port: number, p: string): Promise<{ status: number; body: Buffer }> =>
    new Promise((resolve, reject) => {
      https
        .get({ host: '127.0.0.1', port, path: p, ca, servername: 'localhost' }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        })
        .on('error', reject);
    });
  let acmePort = 0;
  let mgmtPort = 0;
  for (const port of ports) {
    if ((await get(port, '/dir')).status === 200) acmePort = port;
    else mgmtPort = port;
  }
  if (!acmePort || !mgmtPort) throw new Error(`pebble: cannot tell its listeners apart (${ports.join(', ')}): ${log()}`);
  return {
    directory: `https://localhost:${acmePort}/dir`,
    caBundle: path.join(dir, 'cert.pem'),
    child,
    root: async () => {
      const r = await get(mgmtPort, '/roots/0');
      if (r.status !== 200) throw new Error(`pebble /roots/0: ${r.status}`);
      return r.body;
    },
    stop: () => stop(child),
  };
}
