// Pause as a gate: while paused, new requests to the live hosts wait (nothing read from
// them, nothing failed) until resume, or until they have waited `timeoutMs` (then 503 with
// Retry-After). Waiting requests share one promise per 100 ms of arrival: no timer and no
// closure per request, one sweep timer while paused. At most `limit` wait; past it, 503.
import type { Gate, RequestView, Verdict, Wait } from '../proxy/gate.js';
import { answer } from './answers.js';

const BUCKET_MS = 100;

const TIMED_OUT = answer(503, 'bgproxy: paused; try again shortly', [['retry-after', '5']]);
const FULL = answer(503, 'bgproxy: paused, and too many requests are waiting; try again shortly', [['retry-after', '5']]);

interface Bucket {
  readonly opened: number;
  readonly verdict: Wait;
  release: (v: Verdict | null) => void;
  count: number;
}

export interface PauseInfo {
  since: string;
  timeoutMs: number;
  /** Requests waiting now. */
  waiting: number;
  /** Requests that waited and went on (resume), or gave up (timeout / limit), during this pause. */
  released: number;
  timedOut: number;
  refused: number;
}

export class PauseGate implements Gate {
  #paused: { since: string; timeoutMs: number } | null = null;
  #buckets: Bucket[] = [];
  #waiting = 0;
  #limit: number;
  #sweep: NodeJS.Timeout | null = null;
  #released = 0;
  #timedOut = 0;
  #refused = 0;
  /** Requests held since start, every pause counted (the metrics). */
  #held = 0;

  constructor(limit: number) {
    this.#limit = limit;
  }

  /** limits.pausedRequests, at start and at each reload. */
  setLimit(limit: number): void {
    this.#limit = limit;
  }

  get paused(): boolean {
    return this.#paused !== null;
  }

  check(req: RequestView): Verdict | null {
    if (this.#paused === null || req.role !== 'live') return null;
    if (this.#waiting >= this.#limit) {
      this.#refused++;
      return FULL;
    }
    const now = performance.now();
    let b = this.#buckets[this.#buckets.length - 1];
    if (b === undefined || now - b.opened >= BUCKET_MS) b = this.#open(now);
    b.count++;
    this.#waiting++;
    this.#held++;
    return b.verdict;
  }

  #open(now: number): Bucket {
    let release!: (v: Verdict | null) => void;
    const until = new Promise<Verdict | null>((resolve) => {
      release = resolve;
    });
    const b: Bucket = { opened: now, verdict: Object.freeze({ kind: 'wait', until }), release, count: 0 };
    this.#buckets.push(b);
    return b;
  }

  /** Holds new live requests from now on; a second pause only changes the timeout. */
  pause(timeoutMs: number): void {
    const since = this.#paused?.since ?? new Date().toISOString();
    if (this.#paused === null) {
      this.#released = 0;
      this.#timedOut = 0;
      this.#refused = 0;
    }
    this.#paused = { since, timeoutMs };
    this.#sweep ??= setInterval(() => this.#expire(), BUCKET_MS).unref();
  }

  /** Lets every waiting request go on, in arrival order; returns how many waited. */
  resume(): number {
    this.#paused = null;
    if (this.#sweep) clearInterval(this.#sweep);
    this.#sweep = null;
    const n = this.#waiting;
    for (const b of this.#buckets) b.release(null);
    this.#released += n;
    this.#buckets = [];
    this.#waiting = 0;
    return n;
  }

  #expire(): void {
    const p = this.#paused;
    if (p === null) return;
    const cutoff = performance.now() - p.timeoutMs;
    let i = 0;
    for (; i < this.#buckets.length && this.#buckets[i]!.opened <= cutoff; i++) {
      const b = this.#buckets[i]!;
      b.release(TIMED_OUT);
      this.#waiting -= b.count;
      this.#timedOut += b.count;
    }
    if (i > 0) this.#buckets = this.#buckets.slice(i);
  }

  /** For the metrics: whether paused, how many wait now, how many were held since start. */
  counts(): { paused: boolean; waiting: number; held: number } {
    return { paused: this.#paused !== null, waiting: this.#waiting, held: this.#held };
  }

  info(): PauseInfo | null {
    const p = this.#paused;
    if (p === null) return null;
    return { ...p, waiting: this.#waiting, released: this.#released, timedOut: this.#timedOut, refused: this.#refused };
  }

  /** Shutdown: waiting requests go on (to be answered, or closed with the connection). */
  close(): void {
    if (this.#paused !== null) this.resume();
  }
}
