// The slow-client scenario of issue 20, shared by its test (test/helpers/slow-clients.ts) and
// `npm run bench`'s "slow clients" row: a real gunicorn with 2 sync workers (each handles one
// request from start to end), clients that read an 8 MB answer or send a 1 MB body at
// ~20 kB/s as an attacker with a phone connection would, and ordinary requests counted as
// answered when they complete within 2 s. Plain JS: the bench runs it without a build step.
import { existsSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The app: /big answers 8 MB, /upload reads its body whole, anything else is tiny. */
const APP_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../test/fixtures');

/** gunicorn's path, or null when it is not installed (Debian: apt-get install gunicorn). */
export const GUNICORN = ['/usr/bin/gunicorn', '/usr/local/bin/gunicorn'].find((f) => existsSync(f)) ?? null;

/**
 * gunicorn's arguments for the app on 127.0.0.1:`port`: 2 sync workers, its default worker
 * class, as the seed's stack runs it. A short graceful timeout: a SIGTERM does not wait 30 s
 * for a worker busy with a slow client.
 */
export function gunicornArgs(port) {
  return ['-w', '2', '-k', 'sync', '-b', `127.0.0.1:${port}`, '--graceful-timeout', '1', '--chdir', APP_DIR, 'slow_clients_app:app'];
}

/** The bytes per second of every slow client. */
export const RATE = 20_000;

/** GET `path` on 127.0.0.1:`port` with Host `host`: true when a 200 comes whole within `timeoutMs`. */
export function answers(port, path, timeoutMs, host) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path, headers: { host }, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200));
      res.on('error', () => resolve(false));
    });
    req.setTimeout(timeoutMs, () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

/** Polls GET /tiny until `port` answers (gunicorn starting), up to `timeoutMs`. */
export async function waitAnswers(port, host, timeoutMs = 30_000) {
  const until = Date.now() + timeoutMs;
  while (!(await answers(port, '/tiny', 1000, host))) {
    if (Date.now() > until) throw new Error(`nothing answers GET /tiny on 127.0.0.1:${port}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * `n` clients reading GET `path` at RATE (paused between reads to hold the rate).
 * Returns { moved: bytes each client moved so far, stop() }.
 */
export function slowReaders(port, n, { host, path = '/big' }) {
  const moved = Array.from({ length: n }, () => 0);
  const sockets = [];
  const timers = new Set();
  for (let i = 0; i < n; i++) {
    const s = net.connect(port, '127.0.0.1');
    sockets.push(s);
    s.on('error', () => {});
    const started = Date.now();
    s.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
    s.on('data', (d) => {
      moved[i] += d.length;
      const ahead = (moved[i] / RATE) * 1000 - (Date.now() - started);
      if (ahead > 0) {
        s.pause();
        const timer = setTimeout(() => {
          timers.delete(timer);
          s.resume();
        }, ahead);
        timers.add(timer);
      }
    });
  }
  return {
    moved,
    stop: () => {
      for (const timer of timers) clearTimeout(timer);
      for (const s of sockets) s.destroy();
    },
  };
}

/** `n` clients uploading `bytes` to POST `path` at RATE (1 kB every 50 ms). */
export function slowUploaders(port, n, { host, bytes = 1024 * 1024, path = '/upload' }) {
  const moved = Array.from({ length: n }, () => 0);
  const sockets = [];
  const piece = Buffer.alloc(1000, 'u');
  for (let i = 0; i < n; i++) {
    const s = net.connect(port, '127.0.0.1');
    sockets.push(s);
    s.on('error', () => {});
    s.write(`POST ${path} HTTP/1.1\r\nHost: ${host}\r\nContent-Length: ${bytes}\r\n\r\n`);
  }
  const timer = setInterval(() => {
    sockets.forEach((s, i) => {
      if (moved[i] + piece.length > bytes || s.destroyed) return;
      moved[i] += piece.length;
      s.write(piece);
    });
  }, (piece.length / RATE) * 1000);
  return {
    moved,
    stop: () => {
      clearInterval(timer);
      for (const s of sockets) s.destroy();
    },
  };
}

/** Sends `count` ordinary GET /tiny, one every 100 ms; how many were answered (200) within `withinMs`. */
export async function ordinaryRequests(port, { host, count = 20, withinMs = 2000 }) {
  const results = [];
  for (let i = 0; i < count; i++) {
    results.push(answers(port, '/tiny', withinMs, host));
    await new Promise((r) => setTimeout(r, 100));
  }
  return (await Promise.all(results)).filter(Boolean).length;
}

/**
 * The whole measurement against a proxy on `port` in front of a fresh gunicorn: the slow
 * clients start (`scenario`: 'read' or 'upload', 6 of them), get 1 s to reach the app (and,
 * with nothing buffering, to take both workers), then 20 ordinary requests are sent.
 * `sample()` runs every 100 ms meanwhile (the bench reads RSS and temp bytes there).
 * Returns { answered, moved }.
 */
export async function slowClientsRun(port, { host, scenario, clients = 6, sample = () => {} }) {
  const slow = scenario === 'read' ? slowReaders(port, clients, { host }) : slowUploaders(port, clients, { host });
  const sampler = setInterval(sample, 100);
  try {
    await new Promise((r) => setTimeout(r, 1000));
    const answered = await ordinaryRequests(port, { host });
    return { answered, moved: slow.moved.reduce((a, b) => a + b, 0) };
  } finally {
    clearInterval(sampler);
    slow.stop();
  }
}
