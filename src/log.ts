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

/** Written-out blocks kept for reuse. */
const SPARE_BLOCKS = 4;
/** Blocks followed until written (any more are not reused). */
const HELD_BLOCKS = 64;

/**
 * createLogger's destination: pino's asynchronous SonicBoom in buffer mode, so the access log
 * can hand it the blocks it fills byte by byte as they are (in utf8 mode SonicBoom turns every
 * chunk into a string, measures it, and encodes it again for each write), and have them back
 * once written. pino's own lines are strings: encoded on the way in (the slow path).
 */
export class LogDestination implements DestinationStream {
  readonly #boom: Boom;
  /** Blocks handed over since SonicBoom last had nothing left to write. */
  #held: Buffer[] = [];
  /** Blocks written out, for take(). */
  readonly #spare: Buffer[] = [];
  #dropped = false;

  constructor(boom: Boom) {
    this.#boom = boom;
    // 'drain': everything written so far is out (nothing is pending), so are the blocks.
    boom.on('drain', () => {
      for (const b of this.#held) if (this.#spare.length < SPARE_BLOCKS) this.#spare.push(b);
      this.#held = [];
    });
    boom.on('drop', () => {
      this.#dropped = true;
    });
  }

  write(chunk: string): boolean {
    // pino.destination swaps in a no-op write after EPIPE: look it up on each call.
    return this.#boom.write(Buffer.from(chunk) as unknown as string);
  }

  /** Writes the first `length` bytes of `block`; take() hands the block out again once written. */
  writeBlock(block: Buffer, length: number): void {
    this.#dropped = false;
    this.#boom.write(block.subarray(0, length) as unknown as string);
    // Past HELD_BLOCKS (stdout never catching up, or gone: EPIPE), blocks are left to the GC.
    if (!this.#dropped && this.#held.length < HELD_BLOCKS) this.#held.push(block);
  }

  /** A block of at least `size` bytes: one written out already, or a new one. */
  take(size: number): Buffer {
    const spare = this.#spare.pop();
    return spare !== undefined && spare.length >= size ? spare : Buffer.allocUnsafeSlow(size);
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
