// One operation at a time per root, as Bgproxy runs them: each holds ROOT/run/lock (see
// deploy/lock.ts) for its whole length, a second one is refused at once (BG_LOCKED), and the
// post-cutover watch learns that something else changed the colors.
import type { ConfigSource } from '../config.js';
import { acquireLock } from '../deploy/lock.js';

export class OperationLock {
  readonly #config: ConfigSource;
  readonly #onStart: (action: string) => void;
  /** Locked operations started (auto-rollbacks and reloads aside). */
  #started = 0;
  /** The operation holding the lock now; settles (never rejects) when it ends. */
  #running: Promise<void> = Promise.resolve();

  /** `onStart`: an operation that changes the colors begins (the watch must stop). */
  constructor(config: ConfigSource, onStart: (action: string) => void) {
    this.#config = config;
    this.#onStart = onStart;
  }

  get started(): number {
    return this.#started;
  }

  get running(): Promise<void> {
    return this.#running;
  }

  /** Runs `fn` holding the root's lock; refused with BG_LOCKED at once while another holds it. */
  async run<T>(action: string, fn: () => Promise<T>): Promise<T> {
    const lock = await acquireLock(this.#config().root, action);
    if (action !== 'auto-rollback' && action !== 'reload') {
      // Anything else that changes the colors changes what the watch would roll back to.
      this.#started++;
      this.#onStart(action);
    }
    const run = (async () => {
      try {
        return await fn();
      } finally {
        await lock.release();
      }
    })();
    this.#running = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** Resolves once the operation holding the lock (if any) has ended, or after timeoutMs; true if it ended. */
  async settled(timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const ended = await Promise.race([
      this.#running.then(() => true),
      new Promise<boolean>((r) => {
        timer = setTimeout(() => r(false), timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    return ended;
  }
}
