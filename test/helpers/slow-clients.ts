// The slow-client scenario of issue 20, as an attacker with a phone connection would run it:
// a real gunicorn with 2 sync workers, clients that read an 8 MB answer or send a 1 MB body at
// ~20 kB/s, and ordinary requests counted as answered when they complete within 2 s.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './ports.js';

type T = { teardown(fn: () => unknown): void };

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures');

/** Why gunicorn tests cannot run here, or null. */
export const noGunicorn = existsSync('/usr/bin/gunicorn') ? null : 'needs gunicorn (apt-get install gunicorn)';

/** gunicorn -w 2 (sync workers) serving test/fixtures/slow_clients_app.py; killed (its group) at teardown. */
export async function startGunicorn(t: T): Promise<{ port: number; proc: ChildProcess }> {
  const port = await freePort();
  const proc = spawn('/usr/bin/gunicorn', ['-w', '2', '-k', 'sync', '-b', `127.0.0.1:${port}`, '--chdir', FIXTURES, 'slow_clients_app:app'], {
    detached: true,
    stdio: 'ignore',
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  t.teardown(() => {
    try {
      process.kill(-proc.pid!, 'SIGKILL');
    } catch {}
  });
  for (let i = 0; i < 300; i++) {
    if (await answers(port, '/tiny', 1000)) return { port, proc };
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('gunicorn did not start');
}

function answers(port: number, p: string, timeoutMs: number, host = 'live.test'): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, headers: { host }, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200));
      res.on('error', () => resolve(false));
    });
    req.setTimeout(timeoutMs, () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

export interface SlowClients {
  /** Bytes each client moved so far. */
  moved: number[];
  stop(): void;
}

const RATE = 20_000; // bytes per second

/** `n` clients reading GET `path` at ~20 kB/s (paused between reads to hold the rate). */
export function slowReaders(port: number, n: number, p = '/big'): SlowClients {
  const moved = Array.from({ length: n }, () => 0);
  const sockets: net.Socket[] = [];
  const timers = new Set<NodeJS.Timeout>();
  for (let i = 0; i < n; i++) {
    const s = net.connect(port, '127.0.0.1');
    sockets.push(s);
    s.on('error', () => {});
    const started = Date.now();
    s.write(`GET ${p} HTTP/1.1\r\nHost: live.test\r\n\r\n`);
    s.on('data', (d: Buffer) => {
      moved[i]! += d.length;
      const ahead = (moved[i]! / RATE) * 1000 - (Date.now() - started);
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

/** `n` clients uploading `bytes` to POST `path` at ~20 kB/s (1 kB every 50 ms). */
export function slowUploaders(port: number, n: number, bytes = 1024 * 1024, p = '/upload'): SlowClients {
  const moved = Array.from({ length: n }, () => 0);
  const sockets: net.Socket[] = [];
  const piece = Buffer.alloc(1000, 'u');
  for (let i = 0; i < n; i++) {
    const s = net.connect(port, '127.0.0.1');
    sockets.push(s);
    s.on('error', () => {});
    s.write(`POST ${p} HTTP/1.1\r\nHost: live.test\r\nContent-Length: ${bytes}\r\n\r\n`);
  }
  const timer = setInterval(() => {
    sockets.forEach((s, i) => {
      if (moved[i]! + piece.length > bytes || s.destroyed) return;
      moved[i]! += piece.length;
      s.write(piece);
    });
  }, 50);
  return {
    moved,
    stop: () => {
      clearInterval(timer);
      for (const s of sockets) s.destroy();
    },
  };
}

/** Sends `count` ordinary GETs, one every 100 ms; how many were answered (200) within `withinMs`. */
export async function ordinaryRequests(port: number, count = 20, withinMs = 2000): Promise<number> {
  const results: Array<Promise<boolean>> = [];
  for (let i = 0; i < count; i++) {
    results.push(answers(port, '/tiny', withinMs));
    await new Promise((r) => setTimeout(r, 100));
  }
  return (await Promise.all(results)).filter(Boolean).length;
}
