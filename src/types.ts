// The shapes the operations return and status reports: shared by Bgproxy, serve, the
// CLI and embedding hosts.
import type { Color, Config } from './config.js';
import type { DeployProgress } from './deploy/deploy.js';
import type { ReleaseReport } from './release/report.js';
import type { WatchStatus } from './release/watch.js';
import type { CertsStatus } from './tls/tls-front.js';
import type { CanaryStatus, TrafficStatus } from './traffic/traffic.js';

export interface CutoverOptions {
  /** Skip the health check of the color that becomes live. */
  force?: boolean;
  /**
   * Cutover only: watch the new live color this long and roll back automatically when it
   * does worse than before; default config watch.watchMs, 0 turns it off.
   */
  watchMs?: number;
  /**
   * Called once every check before the switch has passed (health, beforeCutover, warm-up),
   * with the color about to go live and its commit; the switch waits for it and does not
   * happen if it throws. A fleet uses it to switch N servers as close together as possible.
   */
  gate?: (target: { color: Color; commit: string | null }) => Promise<void>;
}

/** Steps: beforeCutover, warmup, switch (persist, switch, drain), afterCutover; hook output as lines. */
export type CutoverProgress = DeployProgress;

/** The watch as status shows it, with the auto-rollback it caused, if any. */
export interface WatchReport extends WatchStatus {
  /** msSinceCutover: from the watch's start (the switch) until the rollback's drain ended; switchMs: the rollback alone. */
  rollback?: { ok: boolean; live: Color; msSinceCutover: number; switchMs?: number; drainMs?: number; error?: string };
}

export interface CutoverResult {
  live: Color;
  was: Color;
  /** Requests that were in flight on the old live color when it stopped being live. */
  inflightAtSwitch: number;
  /** The commit the old live color ran (what a rollback brings back). */
  wasCommit?: string | null;
  /** Of those, how many were still running when drainTimeoutMs passed. */
  cutOff: number;
  drainMs: number;
  totalMs: number;
  /** When the new live color took over (ms since the epoch, sub-ms precision): fleets compare these across servers. */
  switchedAt?: number;
  /** nginx mode: how long each nginx step took (old workers: time until they exited). */
  nginx?: { switchedMs: number; testMs: number; reloadMs: number; verifyMs: number; oldWorkersMs: number | null };
  /** Hooks and warm-up of this cutover (a rollback runs afterCutover only). */
  hooks?: ReleaseReport['hooks'];
  warmup?: ReleaseReport['warmup'];
  /** Present when a post-cutover watch started; it goes on in the background. */
  watch?: WatchStatus;
  /** A rollback during a canary: the canary ended, live stayed (was: the canary color). */
  canaryEnded?: boolean;
}

/** What `cutover --canary` returns. */
export interface CanaryStatusResult {
  canary: CanaryStatus;
}

export interface ColorStatus {
  port: number;
  commit: string | null;
  pid: number | null;
  state: string;
  healthy: boolean;
  inflight: number;
  served: number;
  websockets: number;
  reason?: string | null;
  [key: string]: unknown;
}

export interface Status {
  /** The bgproxy version of the process that answered (serve, or the embedding host's copy). */
  version: string;
  live: Color;
  next: Color;
  mode: Config['mode'];
  listen: string | null;
  root: string;
  pid: number;
  colors: Record<Color, ColorStatus>;
  /** The last cutover/rollback this server ran: its hooks and warm-up, or why it failed. */
  lastRelease: ReleaseReport | null;
  /** The current or last post-cutover watch. */
  watch: WatchReport | null;
  /** Access rules (no secrets), pause, maintenance and the canary split. */
  traffic?: TrafficStatus;
  /** HTTPS: the TLS listener, certificates, ACME orders (renewal, last error). */
  tls?: CertsStatus;
  /** serve only: the config file, when serve last loaded it, and whether it changed since. */
  config?: {
    file: string;
    loadedAt: string;
    changedSinceLoad: boolean;
    /** With changedSinceLoad: why `bgproxy reload` would refuse the file as it is now, or null when it would apply it. */
    reloadRefusal?: string | null;
  };
  /** The deploy running now, if any: into which color, which commit (once resolved), which step, since when. */
  deploy?: DeployRunning | null;
}

export interface DeployRunning {
  color: Color;
  /** Null until the resolve step has named it. */
  commit: string | null;
  step: string;
  /** ISO time the deploy started. */
  startedAt: string;
  elapsedMs: number;
}
