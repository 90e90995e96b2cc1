// The CLI side of the control socket.
import net from 'node:net';
import { BgError, type BgErrorCode } from '../errors.js';
import { type ControlLine, socketPath } from './protocol.js';

/** `reply` sends the server one more line (e.g. "go" at a cutover's gate). */
export type EventListener = (event: string, data: Record<string, unknown>, reply: (line: string) => void) => void;

export function controlRequest(
  root: string,
  cmd: string,
  args: Record<string, unknown> = {},
  onEvent?: EventListener,
): Promise<unknown> {
  const file = socketPath(root);
  return new Promise((resolve, reject) => {
    const socket = net.connect(file);
    let buf = '';
    let settled = false;
    const settle = (fn: () => void): void => {
      if (!settled) {
        settled = true;
        fn();
      }
    };
    socket.once('connect', () => socket.write(`${JSON.stringify({ cmd, args })}\n`));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      settle(() => {
        if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') {
          reject(new BgError('BG_NO_SERVER', `no bgproxy server is running for ${root} (start it with: bgproxy serve --root ${root})`));
        } else reject(new BgError('BG_CONTROL', `control socket ${file}: ${err.message}`));
      });
    });
    socket.on('data', (chunk: Buffer) => {
      buf += chunk.toString('utf8');
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let msg: ControlLine;
        try {
          msg = JSON.parse(line) as ControlLine;
        } catch {
          settle(() => reject(new BgError('BG_CONTROL', 'malformed answer from the server')));
          socket.destroy();
          return;
        }
        if ('event' in msg) onEvent?.(msg.event, msg, (l) => socket.write(`${l.replace(/\n/g, ' ')}\n`));
        else if (msg.ok) settle(() => resolve(msg.result));
        else {
          const e = msg.error;
          settle(() => reject(new BgError(e.code as BgErrorCode, e.message, e.detail ? { detail: e.detail } : undefined)));
        }
      }
    });
    socket.once('close', () =>
      settle(() => reject(new BgError('BG_CONTROL', 'the server closed the control connection without an answer'))),
    );
  });
}
