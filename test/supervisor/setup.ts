// Shared by the supervisor tests: an AppProcess running test/fixtures/app.js in a temp
// dir, stopped in teardown even when the test fails.
import { request } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Test } from 'tap';
import { silentLogger } from '../../src/log.js';
import { AppProcess, type AppProcessOptions, type AppState } from '../../src/supervisor/app-process.js';
import { freePort } from '../helpers/ports.js';

export { alive } from '../helpers/procs.js';

export const FIXTURE = fileURLToPath(new URL('../fixtures/app.js', import.meta.url));

const sq = (s: string): string => `'${s.replaceAll("'", "'\\''")}'`;

export interface TestApp {
  app: AppProcess;
  dir: string;
  port: number;
  logFile: string;
  pidFile: string;
}

export async function startable(
  t: Test,
  opts: { env?: Record<string, string> } & Partial<Omit<AppProcessOptions, 'env'>> = {},
): Promise<TestApp> {
  const dir = t.testdir({});
  const port = opts.port ?? (await freePort());
  const { env, ...rest } = opts;
  const logFile = path.join(dir, 'logs', 'blue.log');
  const pidFile = path.join(dir, 'blue', 'etc', 'app.pid');
  const app = new AppProcess({
    color: 'blue',
    port,
    command: `${sq(process.execPath)} ${sq(FIXTURE)}`,
    cwd: dir,
    // tap's loaders in NODE_OPTIONS would slow every fixture start down for nothing.
    env: { PORT: String(port), BG_COLOR: 'blue', NODE_OPTIONS: '', ...env },
    health: { path: '/health', intervalMs: 100, timeoutMs: 2000, unhealthyAfter: 2 },
    startTimeoutMs: 20_000,
    stopSignal: 'SIGTERM',
    stopTimeoutMs: 10_000,
    logFile,
    logMaxBytes: 1024 * 1024,
    pidFile,
    logger: silentLogger(),
    backoff: { initialMs: 100, maxMs: 2000, resetAfterMs: 60_000 },
    ...rest,
  });
  t.teardown(() => app.stop());
  return { app, dir, port, logFile, pidFile };
}

/** Resolves when app reaches state (or is in it already). */
export function waitState(app: AppProcess, state: AppState, timeoutMs = 20_000): Promise<void> {
  if (app.state === state) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      app.off('state', on);
      reject(new Error(`state ${state} not reached in ${timeoutMs} ms (now ${app.state})`));
    }, timeoutMs);
    const on = (s: AppState): void => {
      if (s !== state) return;
      clearTimeout(timer);
      app.off('state', on);
      resolve();
    };
    app.on('state', on);
  });
}

export function get(port: number, urlPath = '/'): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: urlPath, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

