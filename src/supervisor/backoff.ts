// Exponential backoff between restarts of a crashing app: 0.5 s, 1 s, 2 s … capped at
// 30 s, and back to the start once a run stayed up for a stable minute. No jitter: one
// process per color restarts, so there is no herd to spread, and tests stay exact.

export interface BackoffOptions {
  /** First delay. */
  initialMs: number;
  /** Largest delay; the doubling stops here. */
  maxMs: number;
  /** A run that stayed up at least this long counts as healthy: the next delay is initialMs again. */
  resetAfterMs: number;
}

export const DEFAULT_BACKOFF: Readonly<BackoffOptions> = Object.freeze({
  initialMs: 500,
  maxMs: 30_000,
  resetAfterMs: 60_000,
});

export class Backoff {
  readonly options: Readonly<BackoffOptions>;
  #attempt = 0;

  constructor(options: Partial<BackoffOptions> = {}) {
    this.options = Object.freeze({ ...DEFAULT_BACKOFF, ...options });
  }

  /** How many delays were handed out since the last reset. */
  get attempt(): number {
    return this.#attempt;
  }

  /** The delay before the next start, given how long the run that just ended stayed up. */
  next(uptimeMs: number): number {
    if (uptimeMs >= this.options.resetAfterMs) this.reset();
    const { initialMs, maxMs } = this.options;
    // Compare before multiplying so a long crash loop can't overflow to Infinity.
    const delay = this.#attempt >= 52 ? maxMs : Math.min(maxMs, initialMs * 2 ** this.#attempt);
    this.#attempt++;
    return delay;
  }

  reset(): void {
    this.#attempt = 0;
  }
}
