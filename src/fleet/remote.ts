// A remote `bgproxy … --json` over ssh, read like the control socket: {"event":…} lines,
// then {"ok":true,"result":…} or {"ok":false,"error":…}. Errors come back coded and
// named by server: BG_UNREACHABLE when ssh itself failed, else the remote command's code.
import { createInterface } from 'node:readline';
import { BgError, type BgErrorCode } from '../errors.js';
import type { FleetServer } from './config.js';
import { SSH_FAILED, type Ssh, shellQuote } from './ssh.js';

export type RemoteEvent = (event: string, data: Record<string, unknown>, reply: (line: string) => void) => void;

export interface RemoteOptions {
  onEvent?: RemoteEvent;
  /** Keep stdin open for replies (a gated cutover); otherwise it is closed at once. */
  interactive?: boolean;
}

/** The remote command line: the server's bgproxy, ARGS, --root ROOT (each argument quoted). */
export function remoteCommand(server: Readonly<FleetServer>, args: readonly string[]): string {
  return [server.bgproxy, ...[...args, '--root', server.root].map(shellQuote)].join(' ');
}

/** Runs `bgproxy ARGS --root ROOT` on `server` and resolves with its JSON result. */
export function runRemote<T>(ssh: Ssh, server: Readonly<FleetServer>, args: readonly string[], opts: RemoteOptions = {}): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = ssh.spawn(server, remoteCommand(server, args));
    const reply = (line: string): void => {
      if (child.stdin?.writable) child.stdin.write(`${line}\n`);
    };
    if (!opts.interactive) child.stdin?.end();
    child.stdin?.on('error', () => {}); // the remote side may be gone; its exit says why
    let final: { ok: boolean; result?: unknown; error?: { code: string; message: string; detail?: string } } | null = null;
    let plain: unknown;
    const stderr: string[] = [];
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return; // not ours (a login banner, a motd): ignored
      }
      if (typeof msg.event === 'string') opts.onEvent?.(msg.event, msg, reply);
      else if (typeof msg.ok === 'boolean') final = msg as typeof final;
      else plain = msg; // `status --json` prints its object bare
    });
    createInterface({ input: child.stderr! }).on('line', (line) => {
      stderr.push(line);
      if (stderr.length > 20) stderr.shift();
    });
    child.once('error', (err) => reject(new BgError('BG_UNREACHABLE', `${server.name}: cannot run ssh: ${err.message}`)));
    child.once('close', (code) => {
      child.stdin?.destroy();
      const last = stderr.filter((l) => l.trim() !== '').at(-1)?.replace(/^bgproxy: /, '') ?? '';
      const f = final as typeof final;
      if (f?.ok) resolve(f.result as T);
      else if (f?.error) {
        const e = f.error;
        reject(new BgError(e.code as BgErrorCode, `${server.name}: ${e.message}`, e.detail ? { detail: e.detail } : undefined));
      } else if (code === 0 && plain !== undefined) resolve(plain as T);
      else if (code === SSH_FAILED) reject(new BgError('BG_UNREACHABLE', `${server.name}: unreachable over ssh (${server.ssh}): ${last || 'ssh failed'}`));
      else reject(new BgError('BG_FLEET', `${server.name}: ${last || `the remote bgproxy exited with code ${code}`}`));
    });
  });
}
