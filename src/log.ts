import { type DestinationStream, type LevelWithSilent, type Logger, pino } from 'pino';

export type { Logger };

export interface LogOptions {
  level?: LevelWithSilent;
  /** Where JSON lines go; default stdout, written asynchronously so logging stays off the hot path. */
  destination?: NodeJS.WritableStream | number;
  /** Bytes waiting for a slow destination at most (default LOG_MAX_PENDING); later lines are dropped. */
  maxPendingBytes?: number;
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
  /** Lines and bytes dropped since the destination last caught up. */
  #lostLines = 0;
  #lostBytes = 0;

  constructor(boom: Boom) {
    this.#boom = boom;
    // 'drain': everything written so far is out (nothing is pending), so are the blocks.
    boom.on('drain', () => {
      for (const b of this.#held) if (this.#spare.length < SPARE_BLOCKS) this.#spare.push(b);
      this.#held = [];
      if (this.#lostBytes > 0) this.#reportLost();
    });
    // What SonicBoom drops is a chunk as written: always a Buffer (contentMode 'buffer').
    boom.on('drop', (data: Buffer) => {
      this.#dropped = true;
      this.#lostBytes += data.length;
      this.#lostLines += countLines(data);
    });
  }

  /** Once the destination has caught up: one warning line saying what it missed. */
  #reportLost(): void {
    const lines = this.#lostLines;
    const bytes = this.#lostBytes;
    this.#lostLines = 0;
    this.#lostBytes = 0;
    const line = {
      level: 40,
      time: Date.now(),
      name: 'bgproxy',
      droppedLines: lines,
      droppedBytes: bytes,
      msg: `log output fell behind: ${lines} lines (${bytes} bytes) dropped while it could not keep up`,
    };
    this.#boom.write(Buffer.from(`${JSON.stringify(line)}\n`) as unknown as string);
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

/** Complete lines in a chunk of log output. */
function countLines(data: Buffer): number {
  let n = 0;
  for (let i = data.indexOf(10); i >= 0; i = data.indexOf(10, i + 1)) n++;
  return n;
}

export function createLogger(options: LogOptions = {}): Logger {
  const dest =
    typeof options.destination === 'object'
      ? options.destination
      : // Asynchronous, and bounded: when stdout cannot keep up (a stuck pipe, a slow journal),
        // at most LOG_MAX_PENDING bytes wait in memory and what comes later is dropped (whole
        // chunks: one pino line, or one access-log block), counted, and reported in one warning
        // line once it has caught up. Written out at exit (pino.destination registers the
        // synchronous flush).
        new LogDestination(
          pino.destination({ dest: options.destination ?? 1, sync: false, maxLength: options.maxPendingBytes ?? LOG_MAX_PENDING, contentMode: 'buffer' }),
        );
  return pino({ level: options.level ?? 'info', base: { name: 'bgproxy' } }, dest);
}

/** A logger that writes nothing, for embedding and tests that don't care. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
