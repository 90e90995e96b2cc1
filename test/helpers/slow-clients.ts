// The slow-client scenario of issue 20 for the tests (the clients themselves live in
// scripts/slow-clients.js, shared with the bench's "slow clients" row): a real gunicorn with
// 2 sync workers, clients that read an 8 MB answer or send a 1 MB body at ~20 kB/s, and
// ordinary requests counted as answered when they complete within 2 s. Host live.test.
import { type ChildProcess, spawn } from 'node:child_process';
import * as shared from '../../scripts/slow-clients.js';
import { freePort } from './ports.js';

type T = { teardown(fn: () => unknown): void };

export type { SlowClients } from '../../scripts/slow-clients.js';

const HOST = 'live.test';

/** Why gunicorn tests cannot run here, or null. */
export const noGunicorn = shared.GUNICORN === null ? 'needs gunicorn (apt-get install gunicorn)' : null;

/** gunicorn -w 2 (sync workers) serving test/fixtures/slow_clients_app.py; killed (its group) at teardown. */
export async function startGunicorn(t: T): Promise<{ port: number; proc: ChildProcess }> {
  const port = await freePort();
  const proc = spawn(shared.GUNICORN!, shared.gunicornArgs(port), {
    detached: true,
    stdio: 'ignore',
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  t.teardown(() => {
    try {
      process.kill(-proc.pid!, 'SIGKILL');
    } catch {}
  });
  await shared.waitAnswers(port, HOST, 60_000);
  return { port, proc };
}

/** `n` clients reading GET `path` at ~20 kB/s. */
export function slowReaders(port: number, n: number, p = '/big'): shared.SlowClients {
  return shared.slowReaders(port, n, { host: HOST, path: p });
}

/** `n` clients uploading `bytes` to POST `path` at ~20 kB/s. */
export function slowUploaders(port: number, n: number, bytes = 1024 * 1024, p = '/upload'): shared.SlowClients {
  return shared.slowUploaders(port, n, { host: HOST, bytes, path: p });
}

/** Sends `count` ordinary GETs, one every 100 ms; how many were answered (200) within `withinMs`. */
export function ordinaryRequests(port: number, count = 20, withinMs = 2000): Promise<number> {
  return shared.ordinaryRequests(port, { host: HOST, count, withinMs });
}
