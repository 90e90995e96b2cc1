#!/usr/bin/env node
// npm run bench: bgproxy next to nginx (1 worker, upstream keep-alive) and direct, in one run,
// same upstreams, same load generator (wrk when installed, else autocannon), interleaved
// rounds (direct, bgproxy, bgproxy without access log, nginx; again), medians of >= 3 rounds.
// Then the cutover switch time (command issued -> first answer from the new color) and the
// errors keep-alive and new-connection clients see across 10 cutovers in 10 s, bgproxy vs
// `nginx -s reload`. Writes bench/results.json and bench/results.md. Not part of npm test.
//
// Two reference forwarders (bench/ref-http.js, bench/ref-undici.js) run in the same rounds.
//   node scripts/bench.js [--duration S] [--rounds N] [--connections N] [--upstreams static,node,tls,h2]
//                         [--skip-cutovers]  (throughput rounds only)
//                         [--profile DIR]   (instead: bgproxy under --cpu-prof, log on and off)
//                         [--baseline DIR]  (another bgproxy checkout, built, as 'bgproxy-base' in the same
//                                            rounds: a before/after of a change in one interleaved run)
//                         [--only slow-clients]  (just the "slow clients" row, about 30 s; prints it,
//                                            writes nothing: bench/results.* stay the last full run's)
// 'bgproxy-metrics' is bgproxy with metrics.listen on (and the access log), in the same rounds:
// the cost of counting every request for Prometheus.
// Last, the "slow clients" row (issue 20, scripts/bench-slow-clients.js): gunicorn -w 2 sync
// workers behind nginx, bgproxy and bgproxy with buffering off (the control), six slow
// clients, 20 ordinary requests meanwhile.
import { execFile, spawn } from 'node:child_process';
import { accessSync, constants, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { slowClientsMarkdown, slowClientsRow } from './bench-slow-clients.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const PKG = path.resolve(HERE, '..');
const BIN = path.join(PKG, 'bin', 'bgproxy.js');
// Node's flags from the bin's shebang (`#!/usr/bin/env -S node FLAGS`): serve is measured as users run it.
const BIN_NODE_FLAGS = (/^#!.*\bnode\s+(.*)$/.exec(readFileSync(BIN, 'utf8').split('\n')[0]) ?? [])[1]?.trim().split(/\s+/) ?? [];
const EXAMPLE_APP = path.join(PKG, 'examples', 'node-app', 'server.js');
const HOST = 'shop.test';
const STATIC_BODY = 'hello from static upstream!\n'; // 28 bytes, as in the issue's measurements
const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx', '/usr/local/sbin/nginx'].find(exists);
const WRK = ['/usr/bin/wrk', '/usr/local/bin/wrk'].find(exists);
// HTTP/2 load (Debian: nghttp2-client); the h2 row is skipped without it.
const H2LOAD = ['/usr/bin/h2load', '/usr/local/bin/h2load'].find(exists);
const run = promisify(execFile);

const { values: flags } = parseArgs({
  options: {
    duration: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '100' },
    upstreams: { type: 'string', default: 'static,node,tls,h2' },
    profile: { type: 'string' },
    baseline: { type: 'string' },
    'skip-cutovers': { type: 'boolean', default: false },
    only: { type: 'string' },
  },
});
if (flags.only !== undefined && flags.only !== 'slow-clients') throw new Error(`--only ${flags.only}: the one row that runs alone is slow-clients`);
const ROUND_S = Number(flags.duration);
const ROUNDS = Math.max(3, Number(flags.rounds));
const CONNS = Number(flags.connections);

const BASE_BIN = flags.baseline ? path.join(path.resolve(flags.baseline), 'bin', 'bgproxy.js') : null;
if (BASE_BIN && !exists(BASE_BIN)) throw new Error(`--baseline ${flags.baseline}: no bin/bgproxy.js there`);

const { controlRequest } = await import(pathToFileURL(path.join(PKG, 'dist', 'control', 'client.js')).href);

function exists(f) {
  try {
    accessSync(f, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const say = (s) => process.stdout.write(`${s}\n`);
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length === 0 ? null : s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

// ---- processes and files this script makes; cleanup undoes them, also on Ctrl-C ----
const tmp = mkdtempSync('/tmp/bgbench-');
const children = new Set();
async function cleanup() {
  const waits = [];
  for (const c of children) {
    if (c.exitCode !== null || c.signalCode !== null) continue;
    waits.push(new Promise((r) => c.once('exit', r)));
    // nginx masters stop their workers on SIGTERM (a SIGKILLed master would orphan them).
    c.kill('SIGTERM');
    setTimeout(() => c.kill('SIGKILL'), 5000).unref();
  }
  await Promise.all(waits);
  rmSync(tmp, { recursive: true, force: true });
}
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    say(`\n${sig}: cleaning up`);
    cleanup().finally(() => process.exit(130));
  });
}

function track(child, name) {
  children.add(child);
  child.once('exit', (code, sig) => {
    children.delete(child);
    if (!stopping) say(`  (${name} exited: ${code ?? sig})`);
  });
  return child;
}
let stopping = false;

/** A listening 127.0.0.1:0 socket (kept open, handed to nginx as an fd). */
async function listener() {
  const srv = net.createServer();
  await new Promise((r) => srv.listen({ port: 0, host: '127.0.0.1' }, r));
  return { srv, port: srv.address().port, fd: srv._handle.fd };
}

/** A free port below the ephemeral range, for the Node apps that must be told theirs. */
async function freePort() {
  const high = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').split(/\s+/)[0]) || 32_768;
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * (high - 20_000));
    const ok = await new Promise((resolve) => {
      const s = net.createServer();
      s.once('error', () => resolve(false));
      s.listen({ port, host: '127.0.0.1', exclusive: true }, () => s.close(() => resolve(true)));
    });
    if (ok) return port;
  }
}

async function waitHttp(port, timeoutMs = 10_000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const r = await get(port).catch(() => null);
    if (r) return r;
    if (Date.now() > until) throw new Error(`nothing answers on 127.0.0.1:${port}`);
    await sleep(50);
  }
}

function get(port, agent = false) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', headers: { host: HOST }, agent }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, color: res.headers['x-color'] ?? null }));
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
  });
}

// ---- /proc ----
const CLK_TCK = 100;
function cpuMs(pid) {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
}
/** VmRSS in MB; RssAnon (private memory, without the mapped binary) with `field`. */
function rssMb(pid, field = 'VmRSS') {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}
function childPids(pid) {
  const out = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const s = readFileSync(`/proc/${d}/stat`, 'utf8');
      if (Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(d));
    } catch {}
  }
  return out;
}

// ---- the upstreams ----
function nginxMain(prefix, body, workers = 1) {
  const t = (n) => path.join(prefix, 'tmp', n);
  return `daemon off;
master_process on;
worker_processes ${workers};
user root;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections 4096; }
http {
    client_body_temp_path ${t('body')}; proxy_temp_path ${t('proxy')}; fastcgi_temp_path ${t('fastcgi')};
    uwsgi_temp_path ${t('uwsgi')}; scgi_temp_path ${t('scgi')};
    keepalive_requests 1000000;
${body}
}
`;
}

/** nginx with its own prefix; `sockets` are inherited (NGINX="3;4;…"), so no port is re-bound. */
async function startNginx(name, sockets, makeBody) {
  const prefix = path.join(tmp, name);
  mkdirSync(path.join(prefix, 'tmp'), { recursive: true });
  const conf = path.join(prefix, 'nginx.conf');
  writeFileSync(conf, nginxMain(prefix, makeBody(prefix)));
  const fds = sockets.map((s) => s.fd);
  const child = spawn(NGINX, ['-p', `${prefix}/`, '-c', conf, '-e', path.join(prefix, 'error.log')], {
    stdio: ['ignore', 'ignore', 'inherit', ...fds],
    env: { ...process.env, NGINX: `${fds.map((_, i) => i + 3).join(';')};` },
  });
  track(child, name);
  for (const s of sockets) s.srv.close();
  await waitHttp(sockets[0].port);
  const reload = [NGINX, ['-p', `${prefix}/`, '-c', conf, '-e', path.join(prefix, 'error.log'), '-s', 'reload']];
  return { child, pid: child.pid, prefix, reload };
}

function startNodeApp(color, port) {
  const child = spawn(process.execPath, [EXAMPLE_APP], {
    stdio: 'ignore',
    env: { ...process.env, NODE_OPTIONS: '', PORT: String(port), BLUEGREEN: color },
  });
  track(child, `node app ${color}`);
  return child;
}

async function startStaticNode(l) {
  // Without nginx: a minimal Node server as the static upstream.
  const srv = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': STATIC_BODY.length });
    res.end(STATIC_BODY);
  });
  l.srv.close();
  await new Promise((r) => srv.listen(l.port, '127.0.0.1', r));
  return srv;
}

/** A bgproxy root proxying to apps started elsewhere (no app.start), and its serve. */
async function startBgproxy(name, bluePort, greenPort, extra = [], env = {}, edit = (_cfg) => {}, bin = BIN) {
  const root = path.join(tmp, name);
  await run(process.execPath, [bin, 'init', '--root', root, '--host', HOST, '--listen', '127.0.0.1:0', '--blue-port', `${bluePort}`, '--green-port', `${greenPort}`]);
  const cfgFile = path.join(root, 'bgproxy.json');
  const cfg = JSON.parse(readFileSync(cfgFile, 'utf8'));
  cfg.drainTimeoutMs = 5000;
  edit(cfg);
  writeFileSync(cfgFile, JSON.stringify(cfg, null, 2));
  // The access log goes to a file, as it would under a service manager.
  const log = path.join(tmp, `${name}.log`);
  const fd = openSync(log, 'w');
  const child = spawn(process.execPath, [...BIN_NODE_FLAGS, ...extra, bin, 'serve', '--root', root, ...(name.includes('nolog') ? ['--no-access-log'] : [])], {
    stdio: ['ignore', fd, 'inherit'],
    env: { ...process.env, NODE_OPTIONS: '', ...env },
    cwd: tmp,
  });
  track(child, name);
  const until = Date.now() + 15_000;
  for (;;) {
    const line = readFileSync(log, 'utf8').split('\n').find((l) => l.includes('"listening"'));
    if (line) {
      const l = JSON.parse(line);
      return { child, pid: child.pid, root, port: Number(l.listen.split(':').pop()), tlsPort: l.tlsListen ? Number(l.tlsListen.split(':').pop()) : null };
    }
    if (Date.now() > until || child.exitCode !== null) throw new Error(`${name} did not start: ${readFileSync(log, 'utf8').slice(-1000)}`);
    await sleep(50);
  }
}

/** metrics.listen on a port of its own (bound on 127.0.0.1:0: nobody scrapes during the rounds). */
function withMetrics(cfg) {
  cfg.metrics = { listen: '127.0.0.1:0' };
}

/** One of the reference forwarders in bench/ (plain Node, no bgproxy code) in front of `upstreamPort`. */
async function startReference(name, upstreamPort) {
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(PKG, 'bench', `${name}.js`), String(port), String(upstreamPort)], {
    stdio: 'ignore',
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  track(child, name);
  await waitHttp(port);
  return { child, pid: child.pid, port };
}

// ---- the load generator ----
const LUA = path.join(tmp, 'json.lua');
writeFileSync(
  LUA,
  `done = function(s, latency, requests)
  io.write(string.format('JSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\\n',
    s.requests, s.duration, s.errors.connect, s.errors.read, s.errors.write, s.errors.status, s.errors.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
`,
);

/**
 * One h2load run over TLS (the issue's shape: 10 clients, 10 streams each, one thread); the
 * latency percentiles come from its per-request log. No SNI (an IP in the URL), as with wrk.
 */
async function h2load(port, seconds) {
  const log = path.join(tmp, `h2load-${port}.log`);
  const { stdout } = await run(H2LOAD, ['-c10', '-m10', '-t1', '-D', String(seconds), '--log-file', log, `https://127.0.0.1:${port}/`], { maxBuffer: 1 << 22 });
  const rps = Number(/finished in [\d.]+s, ([\d.]+) req\/s/.exec(stdout)?.[1] ?? 0);
  const m = /requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(stdout);
  const st = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(stdout);
  const us = readFileSync(log, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => Number(l.split('\t')[2]))
    .sort((a, b) => a - b);
  rmSync(log, { force: true });
  const pct = (q) => (us.length ? us[Math.min(us.length - 1, Math.floor(q * us.length))] / 1000 : 0);
  const failed = m ? Number(m[4]) + Number(m[5]) + Number(m[6]) : 1;
  const non2xx = st ? Number(st[2]) + Number(st[3]) + Number(st[4]) : 0;
  return { rps, p50: pct(0.5), p99: pct(0.99), requests: m ? Number(m[3]) : 0, errors: failed + non2xx, errorKinds: { failed, non2xx } };
}

/** One load run: { rps, p50, p99, errors, requests }. */
async function load(port, seconds, { close = false, tls = false, h2 = false } = {}) {
  if (h2) return h2load(port, seconds);
  const scheme = tls ? 'https' : 'http';
  if (WRK) {
    const args = ['-t1', `-c${CONNS}`, `-d${seconds}s`, '-s', LUA, '-H', `Host: ${HOST}`];
    if (close) args.push('-H', 'Connection: close');
    // wrk sends the URL's host (an IP here) as SNI; bgproxy treats that as no SNI.
    const { stdout } = await run(WRK, [...args, `${scheme}://127.0.0.1:${port}/`], { maxBuffer: 1 << 20 });
    const j = JSON.parse(stdout.split('\n').find((l) => l.startsWith('JSON ')).slice(5));
    const errors = j.connect + j.read + j.write + j.status + j.timeout;
    return {
      rps: j.requests / (j.duration_us / 1e6),
      p50: j.p50_us / 1000,
      p99: j.p99_us / 1000,
      requests: j.requests,
      errors,
      errorKinds: { connect: j.connect, read: j.read, write: j.write, status: j.status, timeout: j.timeout },
    };
  }
  const { default: autocannon } = await import('autocannon');
  const r = await autocannon({
    url: `${scheme}://127.0.0.1:${port}/`,
    ...(tls ? { servername: HOST } : {}),
    connections: CONNS,
    duration: seconds,
    headers: { host: HOST, ...(close ? { connection: 'close' } : {}) },
  });
  const errors = r.errors + r.timeouts + r.non2xx;
  return {
    rps: r.requests.total / (r.duration || seconds),
    p50: r.latency.p50,
    p99: r.latency.p99,
    requests: r.requests.total,
    errors,
    errorKinds: { errors: r.errors, timeouts: r.timeouts, non2xx: r.non2xx },
  };
}

// ---- throughput rounds ----
async function throughput(upstreamName, targets) {
  say(`\n== ${upstreamName} upstream: ${ROUNDS} interleaved rounds of ${ROUND_S} s, ${CONNS} connections ==`);
  const rssIdle = Object.fromEntries(targets.map((t) => [t.name, t.pids().length ? t.pids().reduce((a, p) => a + rssMb(p), 0) : null]));
  // Warm-up (JIT, pools, TLS sessions); node:http2's JIT warm-up is long: thousands of streams.
  for (const t of targets) await load(t.port, t.h2 ? 5 : 1, { tls: t.tls === true, h2: t.h2 === true });
  const rows = Object.fromEntries(targets.map((t) => [t.name, []]));
  for (let r = 0; r < ROUNDS; r++) {
    // Rotate the order each round so no target always runs right after another.
    const order = targets.map((_, i) => targets[(i + r) % targets.length]);
    for (const t of order) {
      const pids = t.pids();
      const cpu0 = pids.reduce((s, p) => s + cpuMs(p), 0);
      const res = await load(t.port, ROUND_S, { tls: t.tls === true, h2: t.h2 === true });
      const cpu1 = t.pids().reduce((s, p) => s + cpuMs(p), 0);
      res.cpuMsPer1k = pids.length ? ((cpu1 - cpu0) / res.requests) * 1000 : null;
      rows[t.name].push(res);
      say(`  round ${r + 1} ${t.name.padEnd(18)} ${res.rps.toFixed(0).padStart(7)} req/s  p50 ${res.p50.toFixed(2)} ms  p99 ${res.p99.toFixed(2)} ms  errors ${res.errors}${res.cpuMsPer1k === null ? '' : `  cpu ${res.cpuMsPer1k.toFixed(1)} ms/1k`}`);
    }
  }
  const out = {};
  for (const t of targets) {
    const rs = rows[t.name];
    out[t.name] = {
      rps: median(rs.map((x) => x.rps)),
      p50: median(rs.map((x) => x.p50)),
      p99: median(rs.map((x) => x.p99)),
      cpuMsPer1k: rs[0].cpuMsPer1k === null ? null : median(rs.map((x) => x.cpuMsPer1k)),
      rssMb: t.pids().length ? t.pids().reduce((s, p) => s + rssMb(p), 0) : null,
      rssIdleMb: rssIdle[t.name],
      anonMb: t.pids().length ? t.pids().reduce((s, p) => s + rssMb(p, 'RssAnon'), 0) : null,
      errors: rs.reduce((s, x) => s + x.errors, 0),
      rounds: rs.map((x) => ({ rps: Math.round(x.rps), p50: x.p50, p99: x.p99, cpuMsPer1k: x.cpuMsPer1k, errors: x.errors })),
    };
  }
  return out;
}

// ---- cutovers ----
/** Tight loop of new-connection GETs until the answer's color is `want`; ms since `t0`. */
async function firstFrom(port, want, t0, timeoutMs = 10_000) {
  for (;;) {
    const r = await get(port).catch(() => null);
    if (r?.color === want) return performance.now() - t0;
    if (performance.now() - t0 > timeoutMs) return null;
  }
}

async function bgColor(root) {
  return (await controlRequest(root, 'status')).live;
}

async function switchTimes(bg, ng, n = 5) {
  const res = ng ? { bgproxyCli: [], bgproxySocket: [], nginxReload: [] } : { bgproxyCli: [], bgproxySocket: [] };
  for (let i = 0; i < n; i++) {
    for (const how of ng ? ['bgproxyCli', 'bgproxySocket', 'nginxReload'] : ['bgproxyCli', 'bgproxySocket']) {
      if (how === 'nginxReload') {
        const want = ng.live === 'blue' ? 'green' : 'blue';
        ng.setLive(want);
        const t0 = performance.now();
        const cmd = run(ng.reload[0], ng.reload[1]);
        const ms = await firstFrom(ng.ports.cutover, want, t0);
        await cmd;
        res[how].push(ms);
      } else {
        const want = (await bgColor(bg.root)) === 'blue' ? 'green' : 'blue';
        const t0 = performance.now();
        const cmd = how === 'bgproxyCli' ? run(process.execPath, [BIN, 'cutover', '--root', bg.root], { env: { ...process.env, NODE_OPTIONS: '' } }) : controlRequest(bg.root, 'cutover');
        const ms = await firstFrom(bg.port, want, t0);
        await cmd;
        res[how].push(ms);
      }
      await sleep(300);
    }
  }
  return Object.fromEntries(Object.entries(res).map(([k, v]) => [k, { median: median(v.filter((x) => x !== null)), all: v.map((x) => (x === null ? null : Math.round(x * 10) / 10)) }]));
}

/** Load for 10.5 s with a cutover every second (10 in all); returns the load result. */
async function tenCutovers(port, cut, close) {
  const running = load(port, 11, { close });
  await sleep(500);
  const errs = [];
  for (let i = 0; i < 10; i++) {
    const t = performance.now();
    await cut().catch((e) => errs.push(e.message));
    await sleep(Math.max(0, 1000 - (performance.now() - t)));
  }
  const r = await running;
  if (errs.length) r.cutoverErrors = errs;
  return r;
}

// ---- profile mode ----
async function profile(dir, staticPort) {
  mkdirSync(dir, { recursive: true });
  for (const name of ['bg-profile-log', 'bg-profile-nolog']) {
    const out = path.join(path.resolve(dir), name);
    const bg = await startBgproxy(name, staticPort, staticPort + 1, ['--cpu-prof', `--cpu-prof-dir=${out}`]);
    await load(bg.port, 1);
    const r = await load(bg.port, 8);
    say(`${name}: ${r.rps.toFixed(0)} req/s p99 ${r.p99.toFixed(1)} ms`);
    const exited = new Promise((res) => bg.child.once('exit', res));
    bg.child.kill('SIGTERM');
    await exited;
    const file = readdirSync(out).find((f) => f.endsWith('.cpuprofile'));
    say(topFunctions(JSON.parse(readFileSync(path.join(out, file), 'utf8'))));
  }
}

function topFunctions(prof, n = 25) {
  const dt = new Map();
  for (let i = 0; i < prof.samples.length; i++) dt.set(prof.samples[i], (dt.get(prof.samples[i]) ?? 0) + (prof.timeDeltas[i] ?? 0));
  const self = new Map();
  let total = 0;
  for (const node of prof.nodes) {
    const us = dt.get(node.id) ?? 0;
    total += us;
    const cf = node.callFrame;
    const key = `${cf.functionName || '(anonymous)'} ${cf.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/dist\//, 'dist/')}:${cf.lineNumber + 1}`;
    self.set(key, (self.get(key) ?? 0) + us);
  }
  return [...self]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([k, us]) => `  ${((us / total) * 100).toFixed(1).padStart(5)}%  ${k}`)
    .join('\n');
}

// ---- main ----
async function main() {
  const started = Date.now();
  const machine = {
    nproc: os.availableParallelism?.() ?? os.cpus().length,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    node: process.version,
    kernel: os.release(),
    nginx: NGINX ? (await run(NGINX, ['-v'])).stderr.trim().replace('nginx version: ', '') : null,
    loadGenerator: WRK ? `wrk -t1 -c${CONNS} (${WRK})` : `autocannon -c${CONNS}`,
    loadAvgAtStart: os.loadavg().map((x) => Math.round(x * 100) / 100),
    date: new Date().toISOString(),
  };
  say(`machine: ${machine.nproc} CPUs (${machine.cpu}), node ${machine.node}, nginx ${machine.nginx ?? 'not installed'}, ${machine.loadGenerator}; load average ${machine.loadAvgAtStart.join(' ')}`);

  if (flags.only === 'slow-clients') {
    const row = await slowClientsRow(benchToolkit());
    const target = row ? slowClientsTarget(row) : null;
    say(`\n${slowClientsMarkdown(row).join('\n')}${target ? `\n\n${target[0]}: ${target[1]} (met: ${target[2] ? 'yes' : 'no'})` : ''}`);
    say('(--only slow-clients: nothing written)');
    return;
  }

  // Upstreams: static (nginx return 200, or Node when nginx is missing) and the example Node app.
  const staticL = await listener();
  if (NGINX) {
    await startNginx('upstream-static', [staticL], () => `    access_log off;\n    server { listen 127.0.0.1:${staticL.port}; location / { return 200 "${STATIC_BODY.replace('\n', '\\n')}"; } }`);
  } else {
    await startStaticNode(staticL);
  }
  const [bluePort, greenPort] = [await freePort(), await freePort()];
  startNodeApp('blue', bluePort);
  startNodeApp('green', greenPort);
  await waitHttp(bluePort);
  await waitHttp(greenPort);

  if (flags.profile) return profile(flags.profile, staticL.port);

  const upstreams = flags.upstreams.split(',').filter((u) => u !== 'h2' || H2LOAD || !say('  (h2 skipped: h2load is not installed; Debian: nghttp2-client)'));
  // tls: the node upstream through a TLS listener (keep-alive), bgproxy vs nginx, the same certificate.
  const TLS = upstreams.includes('tls') || upstreams.includes('h2');
  const cert = { cert: path.join(tmp, 'tls.pem'), key: path.join(tmp, 'tls.key') };
  if (TLS) {
    await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', cert.key, '-out', cert.cert, '-days', '1', '-subj', `/CN=${HOST}`, '-addext', `subjectAltName=DNS:${HOST}`]);
  }
  const bg = {
    static: await startBgproxy('bg-static', staticL.port, greenPort),
    'static-nolog': await startBgproxy('bg-static-nolog', staticL.port, greenPort),
    'static-metrics': await startBgproxy('bg-static-metrics', staticL.port, greenPort, [], {}, withMetrics),
    node: await startBgproxy('bg-node', bluePort, greenPort),
    'node-nolog': await startBgproxy('bg-node-nolog', bluePort, greenPort),
    'node-metrics': await startBgproxy('bg-node-metrics', bluePort, greenPort, [], {}, withMetrics),
    ...(BASE_BIN
      ? {
          'static-base': await startBgproxy('bg-static-base', staticL.port, greenPort, [], {}, undefined, BASE_BIN),
          'node-base': await startBgproxy('bg-node-base', bluePort, greenPort, [], {}, undefined, BASE_BIN),
        }
      : {}),
    ...(TLS
      ? {
          tls: await startBgproxy('bg-tls', bluePort, greenPort, [], {}, (cfg) => {
            cfg.tls = { listen: '127.0.0.1:0', redirectHttp: false, certificates: [cert] };
          }),
        }
      : {}),
    // h2: the static upstream behind the TLS listener, as in the issue's measurement.
    ...(upstreams.includes('h2')
      ? {
          h2: await startBgproxy('bg-h2', staticL.port, greenPort, [], {}, (cfg) => {
            cfg.tls = { listen: '127.0.0.1:0', redirectHttp: false, certificates: [cert] };
          }),
        }
      : {}),
  };

  // nginx proxy: 1 worker, upstream keep-alive, access log to a file like bgproxy's.
  let ng = null;
  if (NGINX) {
    const [ls, ln, lc] = [await listener(), await listener(), await listener()];
    const lt = TLS ? await listener() : null;
    const lh = upstreams.includes('h2') ? await listener() : null;
    let live = 'blue';
    const liveFile = () => path.join(tmp, 'nginx-proxy', 'live.conf');
    const proxyLoc = (up) =>
      `proxy_pass http://${up}; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Host $host; proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;`;
    const tlsServer = lt
      ? `\n    server { listen 127.0.0.1:${lt.port} ssl; ssl_certificate ${cert.cert}; ssl_certificate_key ${cert.key}; ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache shared:SSL:1m; location / { ${proxyLoc('blue')} } }`
      : '';
    // nginx 1.22's syntax (`http2 on` is 1.25.1+): the static upstream over h2.
    const h2Server = lh
      ? `\n    server { listen 127.0.0.1:${lh.port} ssl http2; ssl_certificate ${cert.cert}; ssl_certificate_key ${cert.key}; ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache shared:SSL:1m; location / { ${proxyLoc('static')} } }`
      : '';
    const inst = await startNginx('nginx-proxy', [ls, ln, lc, ...(lt ? [lt] : []), ...(lh ? [lh] : [])], (prefix) => {
      writeFileSync(path.join(prefix, 'live.conf'), proxyLoc('blue'));
      return `    access_log ${prefix}/access.log;
    upstream static { server 127.0.0.1:${staticL.port}; keepalive 64; }
    upstream blue { server 127.0.0.1:${bluePort}; keepalive 64; }
    upstream green { server 127.0.0.1:${greenPort}; keepalive 64; }
    server { listen 127.0.0.1:${ls.port}; location / { ${proxyLoc('static')} } }
    server { listen 127.0.0.1:${ln.port}; location / { ${proxyLoc('blue')} } }
    server { listen 127.0.0.1:${lc.port}; location / { include ${prefix}/live.conf; } }${tlsServer}${h2Server}`;
    });
    ng = {
      ...inst,
      ports: { static: ls.port, node: ln.port, cutover: lc.port, tls: lt?.port ?? null, h2: lh?.port ?? null },
      get live() {
        return live;
      },
      // The recipe's way: point the include at the other color (atomically), then reload.
      setLive(color) {
        writeFileSync(`${liveFile()}.tmp`, proxyLoc(color));
        renameSync(`${liveFile()}.tmp`, liveFile());
        live = color;
      },
    };
  }
  const nginxPids = () => (ng ? [ng.pid, ...childPids(ng.pid)] : []);

  const results = { machine, settings: { roundSeconds: ROUND_S, rounds: ROUNDS, connections: CONNS }, throughput: {}, cutover: {} };
  for (const up of upstreams) {
    if (up === 'h2') {
      const targets = [{ name: 'bgproxy', port: bg.h2.tlsPort, h2: true, pids: () => [bg.h2.pid] }];
      if (ng) targets.push({ name: 'nginx', port: ng.ports.h2, h2: true, pids: nginxPids });
      results.throughput.h2 = await throughput('h2 (static, h2load -c10 -m10 over TLS)', targets);
      continue;
    }
    if (up === 'tls') {
      const targets = [{ name: 'bgproxy', port: bg.tls.tlsPort, tls: true, pids: () => [bg.tls.pid] }];
      if (ng) targets.push({ name: 'nginx', port: ng.ports.tls, tls: true, pids: nginxPids });
      results.throughput.tls = await throughput('tls (node, keep-alive HTTPS)', targets);
      continue;
    }
    const upPort = up === 'static' ? staticL.port : bluePort;
    const targets = [
      { name: 'direct', port: upPort, pids: () => [] },
      { name: 'bgproxy', port: bg[up].port, pids: () => [bg[up].pid] },
      { name: 'bgproxy-no-log', port: bg[`${up}-nolog`].port, pids: () => [bg[`${up}-nolog`].pid] },
      { name: 'bgproxy-metrics', port: bg[`${up}-metrics`].port, pids: () => [bg[`${up}-metrics`].pid] },
    ];
    if (bg[`${up}-base`]) targets.push({ name: 'bgproxy-base', port: bg[`${up}-base`].port, pids: () => [bg[`${up}-base`].pid] });
    if (ng) targets.push({ name: 'nginx', port: ng.ports[up], pids: nginxPids });
    // The floor of Node's stack, in the same rounds: http.request + pipe, and undici's dispatch.
    for (const ref of ['ref-http', 'ref-undici']) {
      const r = await startReference(ref, upPort);
      targets.push({ name: ref, port: r.port, pids: () => [r.pid] });
    }
    results.throughput[up] = await throughput(up, targets);
  }

  if (flags['skip-cutovers']) {
    say(`\n${markdown(results)}`);
    say('(--skip-cutovers: nothing written)');
    return;
  }
  // Cutovers: bgproxy (bg-node root: blue and green example apps) vs nginx reload.
  say('\n== cutover switch time (command issued -> first answer from the new color), 5 each ==');
  const cutRoot = bg.node;
  results.cutover.switchMs = await switchTimes(cutRoot, ng);
  for (const [k, v] of Object.entries(results.cutover.switchMs)) say(`  ${k.padEnd(14)} median ${v.median?.toFixed(1)} ms  (${v.all.join(', ')})`);

  say('\n== 10 cutovers in 10 s under load: errors seen by clients ==');
  results.cutover.tenCutovers = {};
  for (const close of [false, true]) {
    const kind = close ? 'new connection per request' : 'keep-alive';
    const b = await tenCutovers(cutRoot.port, () => controlRequest(cutRoot.root, 'cutover'), close);
    results.cutover.tenCutovers[`bgproxy ${kind}`] = b;
    say(`  bgproxy ${kind.padEnd(27)} ${b.requests} requests, ${b.errors} errors ${JSON.stringify(b.errorKinds)}${b.cutoverErrors ? ` cutover errors: ${b.cutoverErrors.join('; ')}` : ''}`);
    if (ng) {
      const n = await tenCutovers(
        ng.ports.cutover,
        async () => {
          ng.setLive(ng.live === 'blue' ? 'green' : 'blue');
          await run(ng.reload[0], ng.reload[1]);
        },
        close,
      );
      results.cutover.tenCutovers[`nginx ${kind}`] = n;
      say(`  nginx   ${kind.padEnd(27)} ${n.requests} requests, ${n.errors} errors ${JSON.stringify(n.errorKinds)}`);
    }
  }
  results.slowClients = await slowClientsRow(benchToolkit());
  finish(results, started);
}

/** What the slow-clients row needs of this script. */
function benchToolkit() {
  return { host: HOST, nginx: NGINX ?? null, children, say, freePort, listener, startNginx, startBgproxy, rssMb, childPids };
}

/** Issue 20's target for the row, [what, measured, met]: >= 19 / 20 answered through bgproxy in each scenario. */
function slowClientsTarget(row) {
  const got = Object.values(row).map((s) => s.bgproxy.answered);
  return ['slow clients (issue 20): >= 19 / 20 answered through bgproxy, each scenario', got.map((n) => `${n} / 20`).join(', '), got.every((n) => n >= 19)];
}

function finish(results, started) {
  results.totalSeconds = Math.round((Date.now() - started) / 1000);
  mkdirSync(path.join(PKG, 'bench'), { recursive: true });
  writeFileSync(path.join(PKG, 'bench', 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(path.join(PKG, 'bench', 'results.md'), markdown(results));
  say(`\n${markdown(results)}`);
  say(`written: bench/results.json, bench/results.md (${results.totalSeconds} s)`);
}

function markdown(r) {
  const m = r.machine;
  const f = (x, d = 0) => (x === null || x === undefined ? '-' : x.toFixed(d));
  const lines = [
    `Machine: ${m.nproc} CPUs (${m.cpu}), Linux ${m.kernel}, Node ${m.node}${BIN_NODE_FLAGS.length ? ` (serve with ${BIN_NODE_FLAGS.join(' ')}, as bin/bgproxy.js runs it)` : ''}, nginx ${m.nginx ?? 'not installed'}; load: ${m.loadGenerator}, ${r.settings.rounds} interleaved rounds of ${r.settings.roundSeconds} s, medians; load average at start ${m.loadAvgAtStart.join(' ')}; ${m.date.slice(0, 10)}.`,
    '',
    '| upstream | path | req/s | p50 ms | p99 ms | proxy CPU ms / 1k req | proxy RSS after load (MB) | req/s vs nginx | p99 vs nginx | req/s vs fastest reference |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const [up, rows] of Object.entries(r.throughput)) {
    const ng = rows.nginx;
    const ref = fastestReference(rows);
    for (const [name, x] of Object.entries(rows)) {
      lines.push(
        `| ${up} | ${name} | ${f(x.rps)} | ${f(x.p50, 2)} | ${f(x.p99, 2)} | ${f(x.cpuMsPer1k, 1)} | ${f(x.rssMb, 1)} | ${ng ? `${(x.rps / ng.rps).toFixed(2)}x` : '-'} | ${ng ? `${(x.p99 / ng.p99).toFixed(2)}x` : '-'} | ${ref ? `${(x.rps / ref.rps).toFixed(2)}x` : '-'} |`,
      );
    }
  }
  for (const [up, rows] of Object.entries(r.throughput)) {
    const b = rows['bgproxy-base'];
    if (b) lines.push('', `${up}: this build vs --baseline, same rounds: req/s ${(rows.bgproxy.rps / b.rps).toFixed(3)}x, CPU/1k ${(rows.bgproxy.cpuMsPer1k / b.cpuMsPer1k).toFixed(3)}x, p99 ${(rows.bgproxy.p99 / b.p99).toFixed(2)}x`);
  }
  lines.push('', ...targetsTable(r));
  lines.push('', '| cutover | switch time, median of 5 (ms) | all (ms) |', '|---|---:|---|');
  for (const [k, v] of Object.entries(r.cutover.switchMs ?? {})) lines.push(`| ${k} | ${f(v.median, 1)} | ${v.all.join(', ')} |`);
  lines.push('', '| 10 cutovers in 10 s, 100 clients | requests | failed | by kind |', '|---|---:|---:|---|');
  for (const [k, v] of Object.entries(r.cutover.tenCutovers ?? {})) lines.push(`| ${k} | ${v.requests} | ${v.errors} | ${Object.entries(v.errorKinds).filter(([, n]) => n > 0).map(([kk, n]) => `${kk} ${n}`).join(', ') || '-'} |`);
  if (r.slowClients) lines.push('', ...slowClientsMarkdown(r.slowClients));
  return `${lines.join('\n')}\n`;
}

/** The faster of the two reference forwarders in this run (by median req/s). */
function fastestReference(rows) {
  const refs = ['ref-http', 'ref-undici'].map((k) => rows[k] && { name: k, ...rows[k] }).filter(Boolean);
  return refs.sort((a, b) => b.rps - a.rps)[0] ?? null;
}

/** The issue's targets against this run's numbers: met or missed, never adjusted. */
function targetsTable(r) {
  const rows = ['| target (issue 11) | measured | met |', '|---|---|---|'];
  const add = (what, value, ok) => rows.push(`| ${what} | ${value} | ${ok === null ? 'n/a' : ok ? 'yes' : '**no**'} |`);
  for (const [up, min] of [['static', 0.4], ['node', 0.65]]) {
    const t = r.throughput[up];
    if (!t) continue;
    const ratio = t.nginx ? t.bgproxy.rps / t.nginx.rps : null;
    add(`bgproxy (access log on) >= ${min.toFixed(2)}x nginx req/s, ${up} upstream`, ratio === null ? 'no nginx' : `${ratio.toFixed(2)}x (no log: ${(t['bgproxy-no-log'].rps / t.nginx.rps).toFixed(2)}x)`, ratio === null ? null : ratio >= min);
    const p = t.nginx ? t.bgproxy.p99 / t.nginx.p99 : null;
    const ref = fastestReference(t);
    if (up === 'static' && ref) add(`bgproxy (access log on) >= 1.0x the fastest reference forwarder (${ref.name})`, `${(t.bgproxy.rps / ref.rps).toFixed(2)}x`, t.bgproxy.rps >= ref.rps);
    if (up === 'static' && t.bgproxy.cpuMsPer1k !== null) add('proxy CPU <= 60 ms per 1,000 requests (static, access log on)', `${t.bgproxy.cpuMsPer1k.toFixed(1)} ms`, t.bgproxy.cpuMsPer1k <= 60);
    add(`access log costs <= 5% of throughput, ${up} upstream`, `${((1 - t.bgproxy.rps / t['bgproxy-no-log'].rps) * 100).toFixed(1)}%`, t.bgproxy.rps >= 0.95 * t['bgproxy-no-log'].rps);
    const m = t['bgproxy-metrics'];
    if (m) add(`metrics on cost <= 3% of throughput (issue 25), ${up} upstream`, `${((1 - m.rps / t.bgproxy.rps) * 100).toFixed(1)}% (CPU/1k ${m.cpuMsPer1k?.toFixed(1)} vs ${t.bgproxy.cpuMsPer1k?.toFixed(1)} ms)`, m.rps >= 0.97 * t.bgproxy.rps);
    add(`p99 <= 3x nginx's, ${up} upstream`, p === null ? 'no nginx' : `${p.toFixed(2)}x (${t.bgproxy.p99.toFixed(1)} vs ${t.nginx.p99.toFixed(1)} ms)`, p === null ? null : p <= 3);
    add(`RSS after load <= 80 MB, ${up} upstream`, `${t.bgproxy.rssMb.toFixed(1)} MB (idle before load ${t.bgproxy.rssIdleMb.toFixed(1)} MB; private/anon after load ${t.bgproxy.anonMb.toFixed(1)} MB)`, t.bgproxy.rssMb <= 80);
  }
  const h2 = r.throughput.h2;
  if (h2?.nginx) {
    const ratio = h2.bgproxy.rps / h2.nginx.rps;
    add('h2 (issue 24): bgproxy >= 0.50x nginx req/s (static, h2load -c10 -m10)', `${ratio.toFixed(2)}x (${h2.bgproxy.rps.toFixed(0)} vs ${h2.nginx.rps.toFixed(0)})`, ratio >= 0.5);
    const p = h2.bgproxy.p99 / h2.nginx.p99;
    add("h2 (issue 24): p99 <= 3x nginx's", `${p.toFixed(2)}x (${h2.bgproxy.p99.toFixed(1)} vs ${h2.nginx.p99.toFixed(1)} ms)`, p <= 3);
  }
  const ten = Object.entries(r.cutover.tenCutovers ?? {}).filter(([k]) => k.startsWith('bgproxy'));
  if (ten.length) {
    const failed = ten.reduce((s, [, v]) => s + v.errors, 0);
    add('zero failed requests across 10 cutovers in 10 s, keep-alive and new-connection clients', `${failed} failed of ${ten.reduce((s, [, v]) => s + v.requests, 0)}`, failed === 0);
  }
  if (r.slowClients) add(...slowClientsTarget(r.slowClients));
  return rows;
}

let code = 0;
try {
  await main();
} catch (err) {
  say(`bench FAILED: ${err.stack ?? err}`);
  code = 1;
}
stopping = true;
await cleanup();
process.exit(code);
