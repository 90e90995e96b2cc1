// Another site's process on a port bgproxy wants for a color: a real second process
// (not ours, not a child of serve) listening on 127.0.0.1, answering "other site".
import { type ChildProcess, spawn } from 'node:child_process';

type T = { teardown(fn: () => unknown): void };

export interface Foreign {
  pid: number;
  port: number;
  child: ChildProcess;
  /** Stops it (SIGKILL) and waits for its exit. */
  stop(): Promise<void>;
}

const SERVER = `
const http = require('node:http');
const port = Number(process.argv[1] || 0);
http.createServer((q, s) => s.end('other site')).listen(port, '127.0.0.1', function () {
  process.stdout.write(this.address().port + '\\n');
});`;

/**
 * Starts the listener on `port` (0: the kernel picks one, which is then the color's port).
 * `env` is added to its environment (e.g. the BG_* vars bgproxy gives its own apps).
 */
export async function startForeign(t: T, port = 0, env: Record<string, string> = {}): Promise<Foreign> {
  const child = spawn(process.execPath, ['-e', SERVER, String(port)], {
    env: { ...process.env, NODE_OPTIONS: '', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
    detached: true, // its own process group, as a daemon of another site would be
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  t.teardown(stop);
  const bound = await new Promise<number>((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      if (buf.includes('\n')) resolve(Number(buf.trim()));
    });
    child.once('exit', (code) => reject(new Error(`the foreign listener exited (${code}) before listening`)));
  });
  return { pid: child.pid!, port: bound, child, stop };
}
