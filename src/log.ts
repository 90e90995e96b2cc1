import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

export interface LogOptions {
  level?: LevelWithSilent;
  /** Where JSON lines go; default stdout, written asynchronously so logging stays off the hot path. */
  destination?: NodeJS.WritableStream | number;
}

export function createLogger(options: LogOptions = {}): Logger {
  const dest =
    typeof options.destination === 'object'
      ? options.destination
      : // Asynchronous, and bounded: when stdout cannot keep up (a stuck pipe, a slow
        // journal), at most 16 MB of lines wait in memory and later ones are dropped.
        pino.destination({ dest: options.destination ?? 1, sync: false, maxLength: 16 * 1024 * 1024 });
  return pino({ level: options.level ?? 'info', base: { name: 'bgproxy' } }, dest);
}

/** A logger that writes nothing, for embedding and tests that don't care. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
