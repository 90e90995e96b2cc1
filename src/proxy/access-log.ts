// The access log: one JSON line per forwarded request, in pino's format (the same fields a
// pino child logger with {component: 'access'} writes), built as one string without pino's
// per-call serialisation, gathered into blocks of about 16 kB (or whatever came in the last
// 200 ms) and handed to the logger's destination, pino's asynchronous SonicBoom, so the
// kernel sees one write per block instead of one per request. Flushed when serve stops and
// at process exit; what happens when stdout is slower than the traffic: see createLogger.
import { pino } from 'pino';
import type { Logger } from '../log.js';

interface Destination {
  write(chunk: string): unknown;
  flushSync?(): void;
}

/** A block is handed over once it is this long, or at the next flush tick. */
const BLOCK = 16 * 1024;
const FLUSH_MS = 200;

export class AccessLog {
  readonly #dest: Destination | null;
  readonly #prefix: string;
  #buf = '';
  #timer: NodeJS.Timeout | null = null;
  readonly #onExit = (): void => this.flush(true);

  constructor(logger: Logger) {
    const enabled = logger.isLevelEnabled('info');
    const dest = (logger as unknown as Record<symbol, Destination | undefined>)[pino.symbols.streamSym];
    this.#dest = enabled && dest !== undefined ? dest : null;
    // pino's bindings as it writes them: `,"name":"bgproxy"` (and any child's).
    const bindings = (logger as unknown as Record<symbol, string | undefined>)[pino.symbols.chindingsSym] ?? '';
    this.#prefix = `${bindings},"component":"access"`;
    if (this.#dest !== null) process.once('exit', this.#onExit);
  }

  get enabled(): boolean {
    return this.#dest !== null;
  }

  /** `path` and `host` are JSON-escaped; method and color come from closed sets. */
  write(method: string, host: string, path: string, status: number, color: string, ms: number, upgrade = false): void {
    if (this.#dest === null) return;
    this.#buf += `{"level":30,"time":${Date.now()}${this.#prefix},"method":"${method}","host":${JSON.stringify(host)},"path":${JSON.stringify(path)},"status":${status},"color":"${color}",${upgrade ? '"upgrade":true' : `"ms":${Math.round(ms * 10) / 10}`}}\n`;
    if (this.#buf.length >= BLOCK) this.flush();
    else if (this.#timer === null) {
      this.#timer = setTimeout(() => this.flush(), FLUSH_MS);
      this.#timer.unref();
    }
  }

  /** Hands what is gathered to the destination (and, with `sync`, has it written now). */
  flush(sync = false): void {
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    const dest = this.#dest;
    if (dest === null) return;
    if (this.#buf.length > 0) {
      const block = this.#buf;
      this.#buf = '';
      dest.write(block);
    }
    if (sync) {
      try {
        dest.flushSync?.();
      } catch {
        // A destination that cannot write synchronously now: nothing more to do at exit.
      }
    }
  }

  close(): void {
    this.flush();
    process.off('exit', this.#onExit);
  }
}
