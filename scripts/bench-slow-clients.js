// `npm run bench`'s "slow clients" row (issue 20): six slow clients against a real gunicorn
// with 2 sync workers, through nginx (its default buffering) and through bgproxy side by
// side, and how many of 20 ordinary requests sent meanwhile were answered within 2 s; with
// each proxy's peak RSS and the bytes in its temp files at the peak. bgproxy with buffering
// off runs too: the control that shows the scenario still takes the workers on this machine.
// gunicorn is started afresh for every run so that no run inherits a worker still busy with
// the last one.
// `node scripts/bench.js --only slow-clients` runs just this row (about 30 s).
import { spawn } from 'node:child_process';
import { readdirSync, readlinkSync, statSync } from 'node:fs';
import path from 'node:path';
import { GUNICORN, gunicornArgs, slowClientsRun, waitAnswers } from './slow-clients.js';

export const SCENARIOS = {
  read: '6 clients read an 8 MB answer at ~20 kB/s',
  upload: '6 clients upload 1 MB at ~20 kB/s',
};

/** Bytes in the files under `dir` that the processes `pids` hold open (temp files are unlinked: stat through the fd). */
function tempBytes(pids, dir) {
  let n = 0;
  for (const pid of pids) {
    let fds = [];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {}
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith(dir)) n += statSync(`/proc/${pid}/fd/${fd}`).size;
      } catch {}
    }
  }
  return n;
}

/** gunicorn in a process group of its own, registered in `children` for the bench's cleanup; stop() kills the group. */
async function startGunicorn(port, host, children) {
  const child = spawn(GUNICORN, gunicornArgs(port), { detached: true, stdio: 'ignore', env: { ...process.env, NODE_OPTIONS: '' } });
  children.add(child);
  const exited = new Promise((r) => child.once('exit', r));
  exited.then(() => children.delete(child));
  const stop = async () => {
    children.delete(child);
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {}
    await exited;
  };
  try {
    await waitAnswers(port, host);
  } catch (err) {
    await stop();
    throw err;
  }
  return { stop };
}

/**
 * Runs the row through nginx (when installed), bgproxy and bgproxy with buffering off.
 * `b` is the bench's toolkit: { host, nginx (its path or null), children, say, freePort,
 * listener, startNginx, startBgproxy, rssMb, childPids }. Returns { read, upload }, each
 * { [proxy]: { answered, of, rssIdleMb, rssPeakMb, tempPeakMb, slowBytesMoved } }, or null
 * without gunicorn.
 */
export async function slowClientsRow(b) {
  b.say('\n== slow clients: gunicorn -w 2 sync workers; 6 slow clients, 20 ordinary requests meanwhile (answered = within 2 s) ==');
  if (!GUNICORN) {
    b.say('  (skipped: gunicorn is not installed; Debian: apt-get install gunicorn)');
    return null;
  }
  // The proxies stay; gunicorn comes and goes on the one port they point at.
  const appPort = await b.freePort();
  const bg = await b.startBgproxy('bg-slow-clients', appPort, await b.freePort());
  const proxies = [];
  if (b.nginx) {
    const l = await b.listener();
    // nginx as gunicorn's documentation deploys it: proxy_pass with the defaults (proxy_buffering
    // and proxy_request_buffering on); 1 MB bodies fit its default client_max_body_size.
    const ng = await b.startNginx('nginx-slow-clients', [l], () =>
      `    access_log off;\n    server { listen 127.0.0.1:${l.port}; location / { proxy_set_header Host $http_host; proxy_pass http://127.0.0.1:${appPort}; } }`,
    );
    proxies.push({ name: 'nginx', port: l.port, pids: () => [ng.pid, ...b.childPids(ng.pid)], tempDir: path.join(ng.prefix, 'tmp') });
  }
  proxies.push({ name: 'bgproxy', port: bg.port, pids: () => [bg.pid], tempDir: path.join(bg.root, 'run', 'tmp') });
  const off = await b.startBgproxy('bg-slow-clients-unbuffered', appPort, await b.freePort(), [], {}, (cfg) => {
    cfg.buffering = { requests: false, responses: false };
  });
  proxies.push({ name: 'bgproxy-unbuffered', port: off.port, pids: () => [off.pid], tempDir: path.join(off.root, 'run', 'tmp') });

  const out = {};
  for (const [scenario, what] of Object.entries(SCENARIOS)) {
    out[scenario] = {};
    for (const p of proxies) {
      const app = await startGunicorn(appPort, b.host, b.children);
      try {
        const rss = () => p.pids().reduce((s, pid) => s + b.rssMb(pid), 0);
        const rssIdleMb = rss();
        let rssPeakMb = rssIdleMb;
        let tempPeak = 0;
        const sample = () => {
          rssPeakMb = Math.max(rssPeakMb, rss());
          tempPeak = Math.max(tempPeak, tempBytes(p.pids(), p.tempDir));
        };
        const r = await slowClientsRun(p.port, { host: b.host, scenario, sample });
        out[scenario][p.name] = { answered: r.answered, of: 20, rssIdleMb, rssPeakMb, tempPeakMb: tempPeak / 2 ** 20, slowBytesMoved: r.moved };
        b.say(
          `  ${what.padEnd(42)} ${p.name.padEnd(18)} ${String(r.answered).padStart(2)} / 20 answered  RSS ${rssIdleMb.toFixed(0)} -> ${rssPeakMb.toFixed(0)} MB  temp files at peak ${(tempPeak / 2 ** 20).toFixed(1)} MB`,
        );
      } finally {
        await app.stop();
      }
    }
  }
  return out;
}

/** The row as markdown lines: one per scenario and proxy. */
export function slowClientsMarkdown(row) {
  if (!row) return [];
  const lines = [
    '| slow clients: gunicorn -w 2 sync, 20 ordinary requests meanwhile | proxy | answered within 2 s | peak RSS (MB) | temp files at the peak (MB) |',
    '|---|---|---:|---:|---:|',
  ];
  for (const [scenario, what] of Object.entries(SCENARIOS)) {
    for (const [name, r] of Object.entries(row[scenario])) {
      lines.push(`| ${what} | ${name} | ${r.answered} / ${r.of} | ${r.rssPeakMb.toFixed(0)} | ${r.tempPeakMb.toFixed(1)} |`);
    }
  }
  return lines;
}
