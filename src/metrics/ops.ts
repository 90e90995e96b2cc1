// What the operations did since serve started, for the metrics: switches of the live color,
// rollbacks, deploys by result, the last drain. Bumped where each of those happens (src/ops:
// switch.ts, rollback.ts, deploy.ts); counted whether or not metrics are served, it costs nothing.

export type DeployOutcome = 'ok' | 'noop' | 'failed';

export class OpsCounters {
  /** Every switch of the live color: cutovers, rollbacks and automatic rollbacks alike. */
  cutovers = 0;
  /** Rollbacks and automatic rollbacks (a canary ended by rollback included: no switch then). */
  rollbacks = 0;
  readonly deploys: Record<DeployOutcome, number> = { ok: 0, noop: 0, failed: 0 };
  /** The last drain after a switch: how long it took, and how many requests it cut off. */
  drainSeconds = 0;
  drainCutOff = 0;
  /** When the live color last changed (Unix seconds), 0 before the first switch. */
  lastCutover = 0;

  switched(rollback: boolean): void {
    this.cutovers++;
    if (rollback) this.rollbacks++;
    this.lastCutover = Date.now() / 1000;
  }

  drained(ms: number, cutOff: number): void {
    this.drainSeconds = ms / 1000;
    this.drainCutOff = cutOff;
  }
}
