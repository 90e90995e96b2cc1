// The server side of ROOT/run/bgproxy.sock: mode 0600 in a 0700 directory, one request
// per connection, size-capped, every failure answered as a coded error.
import { chmodSync, existsSync, statSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import { BgError, isBgError } from '../errors.js';
import type { Logger } from '../log.js';
import { type ControlLine, type ControlRequest, MAX_REQUEST_BYTES, socketPath } from './protocol.js';

export type Emit = (event: string, data?: Record<string, unknown>) => void;
/** The client's next line after its request (e.g. "go" at a cutover's gate), or null once it hung up. */
export type Receive = () => Promise<string | null>;
export type CommandHandler = (args: Record<string, unknown>, emit: Emit, receive: Receive) => Promise<unknown>;

const MAX_SOCKET_PATH = 107;
/** A client has this long to send its request line. */
const REQUEST_TIMEOUT_MS = 10_000;

/** Resolves true when something answers on the socket (a live server), false if it is stale. */
function probe(file: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(file);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Reads the lines a client sends after its request, one per call, size-capped like the request. */
function lineReader(socket: net.Socket, rest: string): Receive {
  let buf = rest;
  let ended = false;
  return () =>
    new Promise((resolve) => {
      const take = (): boolean => {
        const nl = buf.indexOf('\n');
        if (nl >= 0 || ended || buf.length > MAX_REQUEST_BYTES) {
          socket.off('data', onData);
          socket.off('end', onEnd);
          socket.off('close', onEnd);
          socket.pause();
          if (nl >= 0 && nl <= MAX_REQUEST_BYTES) {
            const line = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            resolve(line.trim());
          } else resolve(null);
          return true;
        }
        return false;
      };
      const onData = (chunk: Buffer): void => {
        buf += chunk.toString('utf8');
        take();
      };
      const onEnd = (): void => {
        ended = true;
        take();
      };
      if (take()) return;
      if (socket.destroyed || socket.readableEnded) {
        onEnd();
        return;
      }
      socket.on('data', onData);
      socket.once('end', onEnd);
      socket.once('close', onEnd);
      socket.resume();
    });
}

export class ControlServer {
  readonly path: string;
  readonly #server: net.Server;
  readonly #handlers: Map<string, CommandHandler>;
  readonly #log: Logger;
  readonly #sockets = new Set<net.Socket>();

  constructor(root: string, handlers: Record<string, CommandHandler>, logger: Logger) {
    this.path = socketPath(root);
    this.#handlers = new Map(Object.entries(handlers));
    this.#log = logger.child({ component: 'control' });
    this.#server = net.createServer((socket) => this.#onConnection(socket));
  }

  async listen(): Promise<void> {
    if (Buffer.byteLength(this.path) > MAX_SOCKET_PATH) {
      throw new BgError('BG_LAYOUT', `control socket path is too long for a unix socket (${this.path}); use a shorter root`);
    }
    if (existsSync(this.path)) {
      if (await probe(this.path)) {
        throw new BgError('BG_ALREADY_RUNNING', `another bgproxy serve is running on this root (${this.path} answers)`);
      }
      if (!statSync(this.path).isSocket()) throw new BgError('BG_LAYOUT', `${this.path} exists and is not a socket`);
      unlinkSync(this.path); // stale, from a server that was killed
      this.#log.warn({ event: 'stale-socket' }, 'removed a stale control socket');
    }
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.path, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    chmodSync(this.path, 0o600);
  }

  #onConnection(socket: net.Socket): void {
    this.#sockets.add(socket);
    socket.once('close', () => this.#sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.setTimeout(REQUEST_TIMEOUT_MS, () => socket.destroy());
    let buf = '';
    const onData = (chunk: Buffer): void => {
      buf += chunk.toString('utf8');
      const nl = buf.indexOf('\n');
      if (nl < 0 && buf.length <= MAX_REQUEST_BYTES) return;
      socket.off('data', onData);
      socket.pause();
      // The request is in; a long operation (a deploy) answers when it is done.
      socket.setTimeout(0);
      if (nl < 0 || nl > MAX_REQUEST_BYTES) {
        this.#finish(socket, new BgError('BG_CONTROL', `request larger than ${MAX_REQUEST_BYTES} bytes`));
        return;
      }
      void this.#dispatch(socket, buf.slice(0, nl), buf.slice(nl + 1));
    };
    socket.on('data', onData);
  }

  async #dispatch(socket: net.Socket, line: string, rest: string): Promise<void> {
    let req: ControlRequest;
    try {
      const parsed: unknown = JSON.parse(line);
      if (typeof parsed !== 'object' || parsed === null || typeof (parsed as ControlRequest).cmd !== 'string') {
        throw new Error('expected {"cmd": string, "args"?: object}');
      }
      req = parsed as ControlRequest;
      if (req.args !== undefined && (typeof req.args !== 'object' || req.args === null || Array.isArray(req.args))) {
        throw new Error('"args" must be an object');
      }
    } catch (err) {
      this.#finish(socket, new BgError('BG_CONTROL', `invalid request: ${(err as Error).message}`));
      return;
    }
    const handler = this.#handlers.get(req.cmd);
    if (!handler) {
      this.#finish(socket, new BgError('BG_CONTROL', `unknown command "${req.cmd.slice(0, 40)}"`));
      return;
    }
    const emit: Emit = (event, data = {}) => this.#write(socket, { ...data, event });
    try {
      const result = await handler(req.args ?? {}, emit, lineReader(socket, rest));
      this.#finish(socket, null, result);
    } catch (err) {
      if (!isBgError(err)) this.#log.error({ err, cmd: req.cmd }, 'control command failed unexpectedly');
      this.#finish(socket, err);
    }
  }

  #write(socket: net.Socket, line: ControlLine): void {
    if (!socket.destroyed) socket.write(`${JSON.stringify(line)}\n`);
  }

  #finish(socket: net.Socket, err: unknown, result?: unknown): void {
    if (err) {
      const e = isBgError(err) ? err : new BgError('BG_STATE', (err as Error)?.message ?? String(err));
      this.#write(socket, {
        ok: false,
        error: { code: e.code, message: e.message, ...(e.detail ? { detail: e.detail } : {}) },
      });
    } else this.#write(socket, { ok: true, result: result ?? null });
    socket.end();
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      for (const s of this.#sockets) s.end();
    });
    try {
      unlinkSync(this.path);
    } catch {}
  }
}
