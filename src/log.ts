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
      : pino.destination({ dest: options.destination ?? 1, sync: false});
  return pino({ level: options.level ?? 'info', base: { name: 'bgproxy' } }, dest);
}

/** A logger that writes nothing, for embedding and tests that don't care. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
