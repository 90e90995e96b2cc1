// What an operation (the files in src/ops) gets from the Bgproxy that runs it: the parts it
// works with and the state operations change. Bgproxy owns all of it and makes one OpsContext
// for its life, so each operation can read top to bottom in a file of its own while the class
// keeps the state and the wiring.
import type { Colors } from '../colors.js';
import type { Color, ConfigSource, Role } from '../config.js';
import type { Roles } from '../layout/roles.js';
import type { Logger } from '../log.js';
import type { OpsCounters } from '../metrics/ops.js';
import type { ReleaseReport } from '../release/report.js';
import type { WatchKeeper } from '../release/watch-keeper.js';
import type { TlsFront } from '../tls/tls-front.js';
import type { TrafficControls } from '../traffic/traffic.js';
import type { OperationLock } from './lock.js';

/** The deploy running now: what status shows, and how stop or `deploy --cancel` ends it. */
export interface DeployRun {
  abort: AbortController;
  color: Color;
  commit: string | null;
  step: string;
  startedAt: number;
}

/** What operations change; one object, held by Bgproxy and read by its getters. */
export interface OpsState {
  /** Changed only by a switch, after the links on disk (layout/roles.ts), in one assignment. */
  roles: Readonly<Roles>;
  /** The live color before the last cutover, for rollback. */
  previous: { color: Color; commit: string | null } | null;
  /** The last cutover/rollback's report, for status. */
  lastRelease: ReleaseReport | null;
  deploying: DeployRun | null;
}

export interface OpsContext {
  /** The config in force now (a reload replaces it). */
  readonly config: ConfigSource;
  readonly log: Logger;
  readonly state: OpsState;
  readonly colors: Colors;
  readonly traffic: TrafficControls;
  readonly watch: WatchKeeper;
  readonly tls: TlsFront | null;
  readonly lock: OperationLock;
  /** Switches, rollbacks, deploys, drains (Bgproxy's public `ops`). */
  readonly counters: OpsCounters;
  /** The proxy's own listener once serve listens (Bgproxy's public `listenAddress`). */
  listenAddress(): string | null;
  /** Bgproxy's events (see the class's doc comment). */
  emit(event: string, data: unknown): void;
  /** Bgproxy's own methods (an operation calls them as the class did). */
  locked<T>(action: string, fn: () => Promise<T>): Promise<T>;
  assertHealthy(color: Color): Promise<void>;
  markFailed(color: Color, reason: string | null, opts?: { running?: boolean }): void;
  restartColor(color: Color): Promise<unknown>;
  roleOf(color: Color): Role;
}
