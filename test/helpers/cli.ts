// The built CLI as a user runs it: `node bin/bgproxy.js ...`, and `serve` as a child process.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';
import type { Test } from 'tap';
import { type Backend, colorHandler, startBackend } from './backend.js';
import { tempDir } from './root.js';

type T = { teardown(fn: () => unknown): void };

/** Exit CODE, nothing on stdout, one line on stderr matching PATTERN. */
export function oneLine(t: Test, r: { code: number; stdout: string; stderr: string }, code: number, pattern: RegExp): void {
  t.equal(r.code, code, `exit ${code}: ${r.stderr.trim()}`);
  t.equal(r.stdout, '', 'nothing on stdout');
  t.equal(r.stderr.trimEnd().split('\n').length, 1, 'one line');
  t.match(r.stderr, pattern);
}


export const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/bgproxy.js');

export async function cli(args: string[], opts: { env?: Record<string, string>; cwd?: string } = {}) {
  const r = await execa('node', [BIN, ...args], { reject: false, env: opts.env, cwd: opts.cwd, timeout: 120_000 });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

export interface ServeProcess {
  child: ResultPromise;
  port: number;
  /** Parsed JSON log lines so far. */
  logs: Array<Record<string, unknown>>;
  /** Resolves with the first log line matching. */
  waitFor(pred: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  stop(signal?: NodeJS.Signals): Promise<number | undefined>;
}

export interface ServeOptions {
  /**
   * Run the bin itself, as an installed `bgproxy` runs (its shebang's Node flags), without
   * tap's loaders in NODE_OPTIONS: for measuring serve's own memory.
   */
  asInstalled?: boolean;
}

export async function serve(t: T, root: string, extra: string[] = [], opts: ServeOptions = {}): Promise<ServeProcess> {
  const args = ['serve', '--root', root, ...extra];
  const child = opts.asInstalled
    ? execa(BIN, args, { reject: false, buffer: false, env: { NODE_OPTIONS: '' } })
    : execa('node', [BIN, ...args], { reject: false, buffer: false });
  const logs: Array<Record<string, unknown>> = [];
  const waiters = new Set<() => void>();
  let buf = '';
  child.stdout?.on('data', (d: Buffer) => {
    buf += d.toString();
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        logs.push({ raw: line });
      }
      for (const w of [...waiters]) w();
    }
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const waitFor = (pred: (l: Record<string, unknown>) => boolean, timeoutMs = 30_000) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const check = (): void => {
        const hit = logs.find(pred);
        if (hit) {
          waiters.delete(check);
          clearTimeout(timer);
          resolve(hit);
        }
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`serve log line not seen in ${timeoutMs} ms; stderr: ${stderr.slice(-500)}`));
      }, timeoutMs);
      waiters.add(check);
      child.once('exit', () => setTimeout(() => {
        waiters.delete(check);
        clearTimeout(timer);
        reject(new Error(`serve exited: ${stderr.slice(-500)}`));
      }, 50));
      check();
    });
  const stop = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<number | undefined> => {
    if (child.exitCode === null) child.kill(signal);
    const r = await child;
    return r.exitCode;
  };
  // SIGTERM first: serve stops its apps (their own process groups) only when it shuts
  // down; a SIGKILL here would leave them running.
  t.teardown(async () => {
    if (child.exitCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await child;
    clearTimeout(timer);
  });
  const listening = await waitFor((l) => l.event === 'listening');
  const port = listening.listen ? Number(String(listening.listen).split(':').pop()) : 0;
  return { child, port, logs, waitFor, stop };
}

/**
 * A root made with `bgproxy init` as a user types it (live host shop.test), its two colors
 * served by test backends that answer their color's name.
 */
export async function initWithBackends(t: T & Parameters<typeof startBackend>[0], listen: string): Promise<{ root: string; blue: Backend; green: Backend; init: Awaited<ReturnType<typeof cli>> }> {
  const blue = await startBackend(t, colorHandler('blue'));
  const green = await startBackend(t, colorHandler('green'));
  const root = path.join(tempDir(t), 'shop');
  const init = await cli([
    'init', '--root', root, '--host', 'shop.test', '--listen', listen,
    '--blue-port', String(blue.port), '--green-port', String(green.port),
  ]);
  return { root, blue, green, init };
}
