// Both colors' app processes, as `serve` owns them: which color has a release to run,
// the environment each gets, and one AppProcess per color.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { appEnv, COLORS, type Color, type Config, type ConfigSource, type Role } from '../config.js';
import { BgError } from '../errors.js';
import type { Logger } from '../log.js';
import { AppProcess, type AppSnapshot, type AppState } from './app-process.js';
import { whoListens } from './port-owner.js';
import { groupMembers, processGroupOf, signalGroup, waitGroupGone } from './process-group.js';
import { removePidFile } from './spawn.js';

export interface ReleaseIdentity {
  commit: string | null;
  role: Role;
}

/** A color holds a release when its checkout has something besides .git in it. */
export function hasRelease(root: string, color: Color): boolean {
  try {
    return readdirSync(path.join(root, color, 'repo')).some((f) => f !== '.git');
  } catch {
    return false;
  }
}

/** The app's environment: PORT, BG_* (release identity included) and app.env. */
export function releaseEnv(config: Config, color: Color, id: ReleaseIdentity): Record<string, string> {
  return appEnv(config, color, {
    BG_COMMIT: id.commit ?? '',
    BG_RELEASE: id.commit ? id.commit.slice(0, 7) : '',
    BG_ROLE: id.role,
  });
}

/** Whether `pid` runs with the environment bgproxy gives `color`'s app on `root`. */
function startedBy(pid: number, root: string, color: Color): boolean {
  let env: string;
  try {
    env = `\0${readFileSync(`/proc/${pid}/environ`, 'utf8')}`;
  } catch {
    return false;
  }
  return env.includes(`\0BG_ROOT=${root}\0`) && env.includes(`\0BG_COLOR=${color}\0`);
}

export class Supervisor {
  /** The config as of now (a reload may replace it): each start reads it afresh. */
  readonly #config: ConfigSource;
  readonly #log: Logger;
  readonly #apps = new Map<Color, AppProcess>();
  readonly #queues = new Map<Color, Promise<void>>();
  readonly #onState: (color: Color, state: AppState) => void;
  /** Crash restarts of the AppProcess objects each color had before its current one. */
  readonly #earlierRestarts: Record<Color, number> = { blue: 0, green: 0 };
  /** Set by stopAll (serve stopping): no app starts after it. */
  #closed = false;

  constructor(config: ConfigSource, logger: Logger, onState: (color: Color, state: AppState) => void) {
    this.#config = config;
    this.#log = logger;
    this.#onState = onState;
  }

  /** The AppProcess of `color`, made fresh with the current release identity. */
  #make(color: Color, id: ReleaseIdentity): AppProcess {
    const c = this.#config();
    const app = new AppProcess({
      color,
      port: c.colors[color].port,
      command: c.app.start!,
      cwd: path.join(c.root, color, 'repo', c.app.dir),
      env: releaseEnv(c, color, id),
      health: c.app.health,
      startTimeoutMs: c.app.startTimeoutMs,
      stopSignal: c.app.stopSignal,
      stopTimeoutMs: c.app.stopTimeoutMs,
      logFile: path.join(c.root, 'logs', `${color}.log`),
      logMaxBytes: c.app.logMaxBytes,
      pidFile: path.join(c.root, color, 'etc', 'app.pid'),
      logger: this.#log,
    });
    app.on('state', (state) => this.#onState(color, state));
    return app;
  }

  get(color: Color): AppProcess | null {
    return this.#apps.get(color) ?? null;
  }

  /** Crash restarts of `color`'s app since serve started (each start makes a new AppProcess). */
  restartsTotal(color: Color): number {
    return this.#earlierRestarts[color] + (this.#apps.get(color)?.restarts ?? 0);
  }

  snapshot(color: Color): AppSnapshot | null {
    return this.#apps.get(color)?.snapshot() ?? null;
  }

  /**
   * (Re)starts `color` with `id` and resolves when it is healthy. An existing process is
   * stopped first (the caller drains it before).
   */
  start(color: Color, id: ReleaseIdentity): Promise<void> {
    return this.#serial(color, () => this.#start(color, id));
  }

  /**
   * Runs fn after whatever start/stop of `color` is under way: two starts at once would
   * spawn two apps for one port, one of them untracked.
   */
  #serial<T>(color: Color, fn: () => Promise<T>): Promise<T> {
    const prev = this.#queues.get(color) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    this.#queues.set(
      color,
      run.then(
        () => undefined,
        () => undefined,
      ),
    );
    return run;
  }

  async #start(color: Color, id: ReleaseIdentity): Promise<void> {
    const old = this.#apps.get(color);
    if (old) {
      await old.stop();
      old.removeAllListeners('state');
    } else await this.#stopLeftover(color);
    await this.#stopOwnListener(color);
    if (this.#closed) throw new BgError('BG_PROCESS', `${color} not started: bgproxy serve is stopping`);
    const app = this.#make(color, id);
    // In the same turn as the swap, so restartsTotal never counts the old one twice.
    if (old) this.#earlierRestarts[color] += old.restarts;
    this.#apps.set(color, app);
    await app.start();
  }

  /**
   * An app left running by a serve that was killed (SIGKILL, OOM) still holds the color's
   * port, and a new one could not bind it. Stop that group, the same way as any stop, but
   * only if the pidfile's process really is ours: its working directory is in the color.
   */
  async #stopLeftover(color: Color): Promise<void> {
    const c = this.#config();
    const pidFile = path.join(c.root, color, 'etc', 'app.pid');
    let pid: number;
    try {
      pid = Number(readFileSync(pidFile, 'utf8').trim());
    } catch {
      return;
    }
    const members = Number.isInteger(pid) && pid > 1 ? groupMembers(pid) : [];
    if (members.length === 0) {
      removePidFile(pidFile);
      return;
    }
    // The leader may be gone while its group lives on: a Python parent that exited leaving
    // its workers is a zombie under an init that does not reap (its /proc/PID/cwd unreadable),
    // or reaped. Judge the group by a live member then: the leader if it lives, else the first.
    const member = members.includes(pid) ? pid : members[0]!;
    let cwd = '';
    try {
      cwd = readlinkSync(`/proc/${member}/cwd`);
    } catch {}
    if (!cwd.startsWith(path.join(c.root, color) + path.sep) && !startedBy(member, c.root, color)) {
      this.#log.warn({ color, pid, member, cwd }, 'app.pid names a process that is not this color\'s app: left alone');
      removePidFile(pidFile);
      return;
    }
    this.#log.warn({ color, pid, ...(member !== pid ? { member, leader: 'exited' } : {}) }, 'stopping an app left running by an earlier serve');
    await this.#stopGroup(pid);
    removePidFile(pidFile);
  }

  /**
   * The port's listener is this color's own earlier app (its pid file lost, say) when its
   * environment says so: bgproxy starts every app with BG_ROOT and BG_COLOR. Stopped like
   * a leftover. Anyone else's (another site, the recipe's gunicorn) is left alone; the
   * start then refuses, naming it (see AppProcess).
   */
  async #stopOwnListener(color: Color): Promise<void> {
    const c = this.#config();
    const holder = (await whoListens(c.colors[color].port))?.holder;
    if (!holder || !startedBy(holder.pid, c.root, color)) return;
    const pgid = processGroupOf(holder.pid);
    if (pgid === null || pgid <= 1 || pgid === process.pid) return;
    this.#log.warn({ color, pid: holder.pid, pgid }, `stopping an earlier ${color} app that still holds port ${c.colors[color].port}`);
    await this.#stopGroup(pgid);
  }

  async #stopGroup(pgid: number): Promise<void> {
    const c = this.#config();
    signalGroup(pgid, c.app.stopSignal);
    if (!(await waitGroupGone(pgid, c.app.stopTimeoutMs))) {
      signalGroup(pgid, 'SIGKILL');
      await waitGroupGone(pgid, 5000);
    }
  }

  stop(color: Color): Promise<{ killed: boolean }> {
    // Not queued behind a start: a stop must be able to end a start that never gets healthy.
    const app = this.#apps.get(color);
    if (!app) return Promise.resolve({ killed: false });
    return app.stop();
  }

  async stopAll(): Promise<void> {
    this.#closed = true;
    await Promise.all(COLORS.map((c) => this.stop(c)));
  }
}
