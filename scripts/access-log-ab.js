#!/usr/bin/env node
// The access log's cost, measured the way docs/demo-and-bench.md ("Access log cost") reports it:
// bgproxy serve with the log on and with --no-access-log (and any other builds given) in front
// of one static nginx upstream, wrk runs interleaved round by round (the order rotates), the log
// going to a file as under a service manager. Per round: req/s and serve's CPU (utime + stime of
// all its threads, /proc/PID/stat) per 1,000 requests, as ratios to the last target; at the end,
// medians of those ratios. Not part of npm test; needs nginx and wrk.
//   node scripts/access-log-ab.js [--rounds 6] [--duration 5] [--connections 100] [NAME=DIR[:nolog] ...]
// Default targets: log=. and nolog=.:nolog (DIR: a built checkout of bgproxy); DIR:metrics is
// the log on and metrics.listen on too (issue 25's cost of counting every request).
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';

const run = promisify(execFile);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const PKG = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values: flags, positionals } = parseArgs({
  allowPositionals: true,
  options: { rounds: { type: 'string', default: '6' }, duration: { type: 'string', default: '5' }, connections: { type: 'string', default: '100' } },
});
const specs = positionals.length > 0 ? positionals : [`log=${PKG}`, `nolog=${PKG}:nolog`];
const tmp = mkdtempSync('/tmp/bglogab-');
const children = [];
const cleanup = () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
};
process.on('exit', () => {
  cleanup();
  rmSync(tmp, { recursive: true, force: true });
});
for (const sig of ['SIGINT', 'SIGTERM']) process.once(sig, () => process.exit(130));

// The upstream: nginx, one worker, on a socket we listen on and hand over (no port guessing).
const l = net.createServer();
await new Promise((r) => l.listen({ port: 0, host: '127.0.0.1' }, r));
const upstream = l.address().port;
const ng = path.join(tmp, 'nginx');
writeFileSync(
  `${tmp}/nginx.conf`,
  `daemon off; master_process on; worker_processes 1; user root; pid ${ng}.pid; error_log ${ng}.err warn;
events { worker_connections 4096; }
http { client_body_temp_path ${tmp}; proxy_temp_path ${tmp}; fastcgi_temp_path ${tmp}; uwsgi_temp_path ${tmp}; scgi_temp_path ${tmp};
  keepalive_requests 1000000; access_log off;
  server { listen 127.0.0.1:${upstream}; location / { return 200 "hello from static upstream!\\n"; } } }`,
);
children.push(spawn('nginx', ['-p', `${tmp}/`, '-c', `${tmp}/nginx.conf`, '-e', `${ng}.err`], { stdio: ['ignore', 'ignore', 'inherit', l._handle.fd], env: { ...process.env, NGINX: '3;' } }));
l.close();

async function serve(name, dir, log, metrics) {
  const root = path.join(tmp, name);
  const bin = path.join(dir, 'bin', 'bgproxy.js');
  await run(process.execPath, [bin, 'init', '--root', root, '--host', 'shop.test', '--listen', '127.0.0.1:0', '--blue-port', `${upstream}`, '--green-port', `${upstream + 1}`]);
  if (metrics) {
    const cfgFile = path.join(root, 'bgproxy.json');
    writeFileSync(cfgFile, JSON.stringify({ ...JSON.parse(readFileSync(cfgFile, 'utf8')), metrics: { listen: '127.0.0.1:0' } }, null, 2));
  }
  const file = path.join(tmp, `${name}.log`);
  // The bin's shebang flags, as users run it.
  const child = spawn(process.execPath, ['--max-semi-space-size=4', bin, 'serve', '--root', root, ...(log ? [] : ['--no-access-log'])], {
    stdio: ['ignore', openSync(file, 'w'), 'inherit'],
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  children.push(child);
  for (let i = 0; i < 200; i++) {
    await sleep(50);
    const line = readFileSync(file, 'utf8').split('\n').find((x) => x.includes('"listening"'));
    if (line) return { name, pid: child.pid, file, port: Number(JSON.parse(line).listen.split(':').pop()), rps: [], cpu: [] };
  }
  throw new Error(`${name} did not start: ${readFileSync(file, 'utf8').slice(-500)}`);
}

const lua = path.join(tmp, 'json.lua');
writeFileSync(lua, `done = function(s) io.write(string.format('JSON {"requests":%d,"us":%d}\\n', s.requests, s.duration)) end\n`);
async function wrk(port, seconds) {
  const { stdout } = await run('wrk', ['-t1', `-c${flags.connections}`, `-d${seconds}s`, '-s', lua, '-H', 'Host: shop.test', `http://127.0.0.1:${port}/`]);
  return JSON.parse(stdout.slice(stdout.indexOf('JSON ') + 5));
}
function cpuMs(pid) {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) * 10; // clock ticks of 10 ms
}
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

const targets = [];
for (const spec of specs) {
  const [name, rest] = spec.split('=');
  const [dir, mode] = rest.split(':');
  targets.push(await serve(name, path.resolve(dir), mode !== 'nolog', mode === 'metrics'));
}
for (const t of targets) await wrk(t.port, 2); // warm-up
const base = targets[targets.length - 1];
for (let r = 0; r < Number(flags.rounds); r++) {
  for (const t of targets.map((_, i) => targets[(i + r) % targets.length])) {
    const c0 = cpuMs(t.pid);
    const j = await wrk(t.port, flags.duration);
    t.cpu.push(((cpuMs(t.pid) - c0) / j.requests) * 1000);
    t.rps.push(j.requests / (j.us / 1e6));
  }
  const cells = targets.map((t) => `${t.name} ${t.rps[r].toFixed(0)} req/s ${t.cpu[r].toFixed(2)} ms/1k`);
  const ratios = targets.slice(0, -1).map((t) => `${t.name} req/s x${(t.rps[r] / base.rps[r]).toFixed(3)} cpu x${(t.cpu[r] / base.cpu[r]).toFixed(3)}`);
  console.log(`round ${r + 1}: ${cells.join(', ')}; vs ${base.name}: ${ratios.join(', ')}`);
}
console.log(`medians of the per-round ratios vs ${base.name}:`);
for (const t of targets.slice(0, -1)) {
  const rps = median(t.rps.map((x, i) => x / base.rps[i]));
  const cpu = median(t.cpu.map((x, i) => x / base.cpu[i]));
  const diff = median(t.cpu.map((x, i) => x - base.cpu[i]));
  console.log(`  ${t.name.padEnd(8)} req/s x${rps.toFixed(3)}  CPU x${cpu.toFixed(3)} (${diff >= 0 ? '+' : ''}${diff.toFixed(2)} ms per 1k requests)  log ${(statSync(t.file).size / 1e6).toFixed(0)} MB`);
}
// The serves, and nginx, keep the event loop alive: stop them (the 'exit' handler) and go.
process.exit(0);
