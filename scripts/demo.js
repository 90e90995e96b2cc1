#!/usr/bin/env node
// npm run demo: the recipe's zero-downtime experiment, rerunnable on any machine with Node
// and git. A temp root, a git repo of examples/node-app with two commits (v1, v2), `bgproxy
// serve` on a free local port, deploy v1 and cut over, then steady traffic (keep-alive and
// new-connection clients, POSTs, one websocket) while v2 is deployed and cut over. Prints
// the summary and which release answered when, writes an SVG chart, and removes every
// process and file it made, also on Ctrl-C. Uses the built dist/ and bin/bgproxy.js.
//
//   node scripts/demo.js [--chart FILE] [--connections N] [--keep]
import { execFile, spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const PKG = path.resolve(HERE, '..');
const BIN = path.join(PKG, 'bin', 'bgproxy.js');
const EXAMPLE = path.join(PKG, 'examples', 'node-app');
const HOST = 'shop.test';

const { values: flags } = parseArgs({
  options: {
    chart: { type: 'string', default: 'bgproxy-demo.svg' },
    connections: { type: 'string', default: '20' },
    keep: { type: 'boolean', default: false },
  },
});

const dist = (f) => import(pathToFileURL(path.join(PKG, 'dist', 'verify', f)).href);
let lib;
try {
  lib = { ...(await dist('load.js')), ...(await dist('summary.js')), ...(await dist('chart.js')) };
} catch (err) {
  console.error(`demo: dist/ is missing or stale (${err.message}); run \`npm run build\` first (npm run demo does)`);
  process.exit(2);
}

const started = Date.now();
const say = (line) => process.stdout.write(`${line}\n`);
const stamp = () => `[${((Date.now() - started) / 1000).toFixed(1)}s]`;

// ---- everything this script makes, so cleanup can undo it ----
const tmp = mkdtempSync('/tmp/bgdemo-');
let serve = null;
let appPids = [];
let aborter = null;
let cleaning = null;

async function cleanup() {
  cleaning ??= (async () => {
    aborter?.abort();
    if (serve && serve.exitCode === null && serve.signalCode === null) {
      // serve stops both apps the drained way on SIGTERM; SIGKILL its group if it hangs.
      const exited = new Promise((r) => serve.once('exit', r));
      signalGroup(serve.pid, 'SIGTERM');
      const timer = setTimeout(() => signalGroup(serve.pid, 'SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    // Apps run in their own process groups; none should outlive serve, but make sure.
    for (const pid of appPids) signalGroup(pid, 'SIGKILL');
    if (!flags.keep) rmSync(tmp, { recursive: true, force: true });
  })();
  return cleaning;
}

function signalGroup(pid, sig) {
  for (const target of [-pid, pid]) {
    try {
      process.kill(target, sig);
    } catch {}
  }
}

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    say(`\n${sig}: cleaning up`);
    cleanup().finally(() => process.exit(130));
  });
}

// ---- helpers ----
function run(cmd, args, opts = {}) {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${path.basename(cmd)} ${args.join(' ')} failed: ${String(stderr || stdout || err.message).trim()}`));
      else resolve(String(stdout));
    });
  });
}

/** `bgproxy ARGS` with its output indented under the command line. */
async function bgproxy(args, { quiet = false } = {}) {
  if (!quiet) say(`${stamp()} $ bgproxy ${args.join(' ').replaceAll(tmp, '$TMP')}`);
  const out = await run(process.execPath, [BIN, ...args]);
  if (!quiet) for (const line of out.trimEnd().split('\n')) say(`    ${line.replaceAll(tmp, '$TMP')}`);
  return out;
}

const git = (dir, ...args) =>
  run('git', ['-c', 'user.name=bgproxy demo', '-c', 'user.email=demo@bgproxy.invalid', '-c', 'init.defaultBranch=main', ...args], { cwd: dir });

/** A free 127.0.0.1 port below the ephemeral range (the apps are told their port up front). */
async function freePort(taken) {
  let high = 32_768;
  try {
    high = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || high;
  } catch {}
  for (let i = 0; i < 200; i++) {
    const port = 20_000 + Math.floor(Math.random() * (high - 20_000));
    if (taken.includes(port)) continue;
    const free = await new Promise((resolve) => {
      const srv = net.createServer();
      srv.once('error', () => resolve(false));
      srv.listen({ port, host: '127.0.0.1', exclusive: true }, () => srv.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error('no free port found');
}

async function startServe(root) {
  const logFile = path.join(tmp, 'serve.log');
  const fd = (await import('node:fs')).openSync(logFile, 'w');
  // Its own process group, so a terminal's Ctrl-C reaches us and we stop it in order.
  const child = spawn(process.execPath, [BIN, 'serve', '--root', root], { stdio: ['ignore', fd, fd], detached: true });
  const exited = new Promise((r) => child.once('exit', (code, sig) => r(`exited (${code ?? sig})`)));
  const until = Date.now() + 15_000;
  for (;;) {
    const line = readFileSync(logFile, 'utf8').split('\n').find((l) => l.includes('"listening"'));
    if (line) return { child, listen: JSON.parse(line).listen, logFile };
    const why = await Promise.race([exited, new Promise((r) => setTimeout(() => r(null), 50))]);
    if (why || Date.now() > until) {
      throw new Error(`bgproxy serve ${why ?? 'did not listen in 15 s'}:\n${readFileSync(logFile, 'utf8').slice(-2000)}`);
    }
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- the demo ----
async function demo() {
  say(`bgproxy demo: temp dir ${tmp} (removed at the end)\n`);

  // A git repo of the example app with two releases.
  const repo = path.join(tmp, 'app');
  mkdirSync(repo);
  await git(repo, 'init', '-q');
  for (const f of ['server.js', 'package.json']) copyFileSync(path.join(EXAMPLE, f), path.join(repo, f));
  const commits = {};
  for (const v of ['v1', 'v2']) {
    writeFileSync(path.join(repo, 'VERSION'), `${v}\n`);
    await git(repo, 'add', '-A');
    await git(repo, 'commit', '-q', '-m', `Release ${v}`);
    commits[v] = (await git(repo, 'rev-parse', 'HEAD')).trim();
  }
  say(`${stamp()} app repo with two commits: v1 ${commits.v1.slice(0, 7)}, v2 ${commits.v2.slice(0, 7)}`);

  const root = path.join(tmp, 'root');
  const bluePort = await freePort([]);
  const greenPort = await freePort([bluePort]);
  await bgproxy(['init', '--root', root, '--host', HOST, '--listen', '127.0.0.1:0', '--blue-port', `${bluePort}`, '--green-port', `${greenPort}`, '--start', 'node server.js']);
  const configFile = path.join(root, 'bgproxy.json');
  const config = JSON.parse(readFileSync(configFile, 'utf8'));
  config.app = {
    ...config.app,
    repo,
    env: { BLUEGREEN: '$BG_COLOR' },
    health: { path: '/', intervalMs: 250, timeoutMs: 2000 },
    startTimeoutMs: 15_000,
    stopTimeoutMs: 5000,
  };
  config.drainTimeoutMs = 10_000;
  writeFileSync(configFile, `${JSON.stringify(config, null, 2)}\n`);

  say(`${stamp()} $ bgproxy serve --root $TMP/root &`);
  const s = await startServe(root);
  serve = s.child;
  const port = Number(String(s.listen).split(':').pop());
  say(`    listening on ${s.listen} (JSON logs in $TMP/serve.log)`);

  await bgproxy(['deploy', commits.v1, '--from', repo, '--root', root]);
  await bgproxy(['cutover', '--root', root]);

  const connections = Number(flags.connections);
  say(`\n${stamp()} load: ${connections} keep-alive clients + ${Math.max(2, Math.ceil(connections / 4))} new-connection clients, POSTs, one websocket -> Host: ${HOST}`);
  aborter = new AbortController();
  const load = lib.startLoad({
    url: `http://127.0.0.1:${port}/`,
    host: HOST,
    durationMs: 40_000, // an upper bound; stopped 2.5 s after the cutover
    connections,
    posts: true,
    websocket: true,
    signal: aborter.signal,
  });
  await sleep(1500);
  load.mark('$ bgproxy deploy v2');
  await bgproxy(['deploy', commits.v2, '--from', repo, '--root', root]);
  await sleep(1000);
  load.mark('$ bgproxy cutover');
  await bgproxy(['cutover', '--root', root]);
  await sleep(2500);
  const status = JSON.parse(await bgproxy(['status', '--root', root, '--json'], { quiet: true }));
  appPids = ['blue', 'green'].map((c) => status.colors[c].pid).filter((p) => typeof p === 'number');
  load.stop();
  const result = await load.done;
  // The instant serve switched, from its log: the CLI's own start-up shows as the gap.
  for (const line of readFileSync(s.logFile, 'utf8').split('\n')) {
    if (!line.includes('"event":"cutover"')) continue;
    const e = JSON.parse(line);
    const t = e.time - result.startedAt;
    if (t >= 0) result.marks.push({ t, label: `switched: live ${e.live}` });
  }
  result.marks.sort((a, b) => a.t - b.t);
  const summary = lib.summarize(result);

  say(`\n${lib.formatSummary(summary)}`);
  say('What the clients saw (the recipe\'s `while true; do curl -s http://HOST/; done`, one line per change):');
  for (const tr of summary.transitions) {
    const [color, version] = tr.label.split(' ');
    say(`  from ${(tr.t / 1000).toFixed(1).padStart(4)}s  Hello 0-downtime ${color} World! (version ${version})`);
  }
  const chart = path.resolve(flags.chart);
  writeFileSync(chart, lib.renderSvg(result, { title: 'bgproxy demo: deploy v2 and cut over under load' }));
  say(`\nchart: ${chart}`);

  const colorsSeen = new Set(summary.labels.map((l) => l.label));
  const problems = [];
  if (!summary.ok) problems.push(`${summary.failed} failed requests${summary.ws && !summary.ws.ok ? ', websocket failed' : ''}`);
  if (!colorsSeen.has(`green v1`) || !colorsSeen.has(`blue v2`)) problems.push(`expected answers from green v1 and blue v2, saw ${[...colorsSeen].join(', ')}`);
  return problems;
}

let code = 0;
try {
  const problems = await demo();
  if (problems.length > 0) {
    say(`\nFAILED: ${problems.join('; ')}`);
    code = 1;
  } else {
    say('\nOK: zero failed requests through the deploy and the cutover');
  }
} catch (err) {
  say(`\nFAILED: ${err.message}`);
  code = 1;
}
say(`${stamp()} stopping bgproxy serve and the apps, removing the temp dir`);
await cleanup();
say(`done in ${((Date.now() - started) / 1000).toFixed(1)} s${flags.keep ? ` (kept ${tmp})` : ''}`);
process.exit(code);
