// A stand-in for a systemd .socket unit (test/fixtures/socket-holder.py): it holds the
// listening sockets, runs `bgproxy serve` on them with LISTEN_FDS, and restarts or stops
// it on request. Stopped (then killed, if need be) at teardown.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BIN } from './cli.js';

type T = { teardown(fn: () => unknown): void };

const HOLDER = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/socket-holder.py');

export interface SocketHolder {
  /** The count-th line (from 1) of the holder's and serve's output matching `re`. */
  line(re: RegExp, count?: number, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Stops serve and starts a new one on the same sockets. */
  restart(): void;
}

/** Runs serve for `root` under the holder; `tls` adds a second socket named "https". */
export function startSocketHolder(t: T, root: string, opts: { tls?: boolean } = {}): SocketHolder {
  const holder = spawn('python3', [HOLDER, process.execPath, BIN, 'serve', '--root', root, '--no-access-log'], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, NODE_OPTIONS: '', ...(opts.tls ? { HOLDER_TLS: '1' } : {}) },
  });
  const exited = new Promise<void>((resolve) => holder.once('exit', () => resolve()));
  t.teardown(async () => {
    if (holder.exitCode !== null) return;
    holder.stdin.end('stop\n');
    const timer = setTimeout(() => holder.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(timer);
  });
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  let buf = '';
  holder.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      lines.push(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
    for (const w of [...waiters]) w();
  });
  const line = (re: RegExp, count = 1, timeoutMs = 30_000): Promise<RegExpMatchArray> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const hits = lines.map((l) => re.exec(l)).filter((m): m is RegExpExecArray => m !== null);
        if (hits.length >= count) {
          waiters.delete(check);
          clearTimeout(timer);
          resolve(hits[count - 1]!);
        }
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`no line ${re} (#${count}) in ${timeoutMs} ms; last: ${lines.slice(-5).join(' | ')}`));
      }, timeoutMs);
      waiters.add(check);
      check();
    });
  return { line, restart: () => holder.stdin.write('restart\n') };
}
