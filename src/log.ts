import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

export interface LogOptions {
  level?: LevelWithSilent;
  /** Where JSON lines go; default stdout, written asynchronously so logging stays off the hot path. */
  destination?: NodeJS.WritableStream | number;
}

/** The most lines (in bytes) waiting for a slow stdout; later ones are dropped. */
export const LOG_MAX_PENDING = 16 * 1024 * 1024;

type Boom = ReturnType<typeof pino.destination>;

/**
 * createLogger's destination: pino's asynchronous SonicBoom in buffer mode, so the access log
 * can hand it the blocks it fills byte by byte as they are (in utf8 mode SonicBoom turns every
 * chunk into a string, measures it, and encodes it again for each write). pino's own lines
 * are strings: encoded on the way in (the slow path: lifecycle, errors).
 */
export class LogDestination implements DestinationStream {
  readonly #boom: Boom;
  constructor(boom: Boom) {
    this.#boom = boom;
  }
  write(chunk: string | Uint8Array): boolean {
    // pino.destination swaps in a no-op write after EPIPE: look it up on each call.
    return this.#boom.write(typeof chunk === 'string' ? (Buffer.from(chunk) as unknown as string) : (chunk as unknown as string));
  }
  flush(cb?: (err?: Error) => void): void {
    this.#boom.flush(cb);
  }
  flushSync(): void {
    this.#boom.flushSync();
  }
}

export function createLogger(options: LogOptions = {}): Logger {
  const dest =
    typeof options.destination === 'object'
      ? options.destination
      : // Asynchronous, and bounded: when stdout cannot keep up (a stuck pipe, a slow journal),
        // at most LOG_MAX_PENDING bytes wait in memory and what comes later is dropped (whole
        // chunks: one pino line, or one access-log block). Written out at exit (pino.destination
        // registers the synchronous flush).
        new LogDestination(pino.destination({ dest: options.destination ?? 1, sync: false, maxLength: LOG_MAX_PENDING, contentMode: 'buffer' }));
  return pino({ level: options.level ?? 'info', base: { name: 'bgproxy' } }, dest);
}

/** A logger that writes nothing, for embedding and tests that don't care. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
