// The access log: one JSON line per forwarded request, in pino's format (the same fields a
// pino child logger with {component: 'access'} writes), built as one string and handed to
// the logger's destination without pino's per-call serialisation. The destination is
// pino's asynchronous SonicBoom: lines are buffered and written in batches, flushed before
// serve exits, and bounded (see createLogger) when stdout cannot keep up.
import { pino } from 'pino';
import type { Logger } from '../log.js';

interface Destination {
  write(line: string): unknown;
}

export class AccessLog {
  readonly #dest: Destination | null;
  readonly #prefix: string;

  constructor(logger: Logger) {
    const enabled = logger.isLevelEnabled('info');
    const dest = (logger as unknown as Record<symbol, Destination | undefined>)[pino.symbols.streamSym];
    this.#dest = enabled && dest !== undefined ? dest : null;
    // pino's bindings as it writes them: `,"name":"bgproxy"` (and any child's).
    const bindings = (logger as unknown as Record<symbol, string | undefined>)[pino.symbols.chindingsSym] ?? '';
    this.#prefix = `${bindings},"component":"access"`;
  }

  get enabled(): boolean {
    return this.#dest !== null;
  }

  /** `path` is the client's request target; the only field that needs escaping. */
  write(method: string, host: string, path: string, status: number, color: string, ms: number, upgrade = false): void {
    const dest = this.#dest;
    if (dest === null) return;
    dest.write(
      `{"level":30,"time":${Date.now()}${this.#prefix},"method":"${method}","host":${JSON.stringify(host)},"path":${JSON.stringify(path)},"status":${status},"color":"${color}",${upgrade ? '"upgrade":true' : `"ms":${Math.round(ms * 10) / 10}`}}\n`,
    );
  }
}
