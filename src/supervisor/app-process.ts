// One color's app process: spawn it in its own process group, wait until its health
// path answers, keep checking it, restart it with backoff when it dies, and stop it so
// that nothing of its group survives. Draining in-flight requests is the caller's job,
// done before stop().
import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Color, HealthConfig } from '../config.js';
import { BgError } from '../errors.js';
import type { Logger } from '../log.js';
import { Backoff, type BackoffOptions } from './backoff.js';
import { checkHealth } from './health-check.js';
import { LogFile } from './log-file.js';
import { formatHolder, listensElsewhere, ownership, type PortHolder, portListeners, whoListens } from './port-owner.js';
import { groupMembers, signalGroup, waitGroupGone } from './process-group.js';
import { describeExit, type ExitInfo, type GroupLeader, removePidFile, spawnInGroup, writePidFile } from './spawn.js';

export type { ExitInfo } from './spawn.js';

export type AppState = 'stopped' | 'starting' | 'running' | 'unhealthy' | 'crashed' | 'backoff' | 'stopping' | 'failed';

export interface AppProcessOptions {
  color: Color;
  port: number;
  /** Run by /bin/sh -c, so $VARS and `cd x && …` work. */
  command: string;
  cwd: string;
  /** Merged over process.env (PORT, BG_COLOR, BG_ENV, BG_ROOT and app.env: see appEnv()). */
  env: Record<string, string>;
  health: HealthConfig;
  startTimeoutMs: number;
  stopSignal: NodeJS.Signals;
  stopTimeoutMs: number;
  logFile: string;
  logMaxBytes: number;
  pidFile: string;
  logger: Logger;
  backoff?: Partial<BackoffOptions>;
  /** Pause between readiness probes while starting; default 150 ms. */
  readyPollMs?: number;
}

export interface AppSnapshot {
  state: AppState;
  pid: number | null;
  uptimeMs: number | null;
  restarts: number;
  lastExit: ExitInfo | null;
  healthy: boolean;
  reason: string | null;
}

export interface AppProcessEvents {
  state: [state: AppState, previous: AppState];
  ready: [];
  crashed: [exit: { code: number | null; signal: NodeJS.Signals | null }];
  restarting: [info: { inMs: number; attempt: number }];
  stopped: [result: { killed: boolean }];
}

/** One spawned process; events of an older run are ignored once a new one exists. */
interface Run {
  leader: GroupLeader;
  /** Aborted when the process exits or is being stopped: ends the readiness and health loops. */
  abort: AbortController;
  /** Listening socket inodes found to belong to this run's process tree (see port-owner.ts). */
  verified: Set<string>;
  /** The last lines this run wrote: a failed start shows its own output, not an earlier run's. */
  tail: OutputTail;
}

type Readiness = { ok: true } | { ok: false; why: 'exited' | 'timeout' | 'stopped'; reason: string };

const KILL_WAIT_MS = 5_000;
const TAIL_LINES = 20;
/** How often a running app's listener is checked to still be its own (see port-owner.ts). */
const OWNERSHIP_EVERY_MS = 10_000;

/** The last TAIL_LINES lines of a run's output (stdout and stderr as they came). */
class OutputTail {
  readonly #lines: string[] = [];
  #partial = '';
  push(chunk: Buffer): void {
    const parts = (this.#partial + chunk.toString('utf8')).split('\n');
    this.#partial = parts.pop() ?? '';
    for (const l of parts) {
      this.#lines.push(l.endsWith('\r') ? l.slice(0, -1) : l);
      if (this.#lines.length > TAIL_LINES) this.#lines.shift();
    }
    // A line without its newline (a crash mid-write) still counts, but not without bound.
    if (this.#partial.length > 4096) this.#partial = this.#partial.slice(-4096);
  }
  text(): string | undefined {
    const all = this.#partial ? [...this.#lines, this.#partial].slice(-TAIL_LINES) : this.#lines;
    return all.join('\n') || undefined;
  }
}

export class AppProcess extends EventEmitter<AppProcessEvents> {
  readonly color: Color;
  readonly #o: AppProcessOptions;
  readonly #log: Logger;
  readonly #logFile: LogFile;
  readonly #backoff: Backoff;
  #state: AppState = 'stopped';
  #reason: string | null = null;
  #run: Run | null = null;
  #restarts = 0;
  #lastExit: ExitInfo | null = null;
  #restartTimer: NodeJS.Timeout | undefined;
  /** Set while a start is refused because another process holds the port. */
  #foreign: PortHolder | null = null;
  #starting: Promise<void> | null = null;
  #stopping: Promise<{ killed: boolean }> | null = null;

  constructor(options: AppProcessOptions) {
    super();
    this.#o = { ...options };
    this.color = options.color;
    this.#log = options.logger.child({ component: 'supervisor', color: options.color });
    this.#logFile = new LogFile(options.logFile, options.logMaxBytes);
    this.#backoff = new Backoff(options.backoff);
  }

  get state(): AppState {
    return this.#state;
  }
  /** Pid of the running process (also its process group id), null when none runs. */
  get pid(): number | null {
    return this.#run && !this.#run.leader.exitInfo ? this.#run.leader.pid : null;
  }
  /** Restarts after crashes since this object was created (not counting start()/restart()). */
  get restarts(): number {
    return this.#restarts;
  }
  get lastExit(): ExitInfo | null {
    return this.#lastExit;
  }
  get startedAt(): Date | null {
    return this.pid === null ? null : new Date(this.#run!.leader.startedAt);
  }
  get healthy(): boolean {
    return this.#state === 'running';
  }
  /** The process that held the port when the last start was refused (see port-owner.ts). */
  get foreign(): PortHolder | null {
    return this.#foreign;
  }
  /** Why the process is unhealthy, crashed or failed; null while all is well. */
  get reason(): string | null {
    return this.#reason;
  }

  snapshot(): AppSnapshot {
    const started = this.startedAt;
    return {
      state: this.#state,
      pid: this.pid,
      uptimeMs: started ? Date.now() - started.getTime() : null,
      restarts: this.#restarts,
      lastExit: this.#lastExit,
      healthy: this.healthy,
      reason: this.#reason,
    };
  }

  /**
   * Starts the app and resolves once its health path answers 2xx/3xx. Rejects with
   * BG_PROCESS when it exits first (it then keeps being restarted with backoff until
   * stop()) or is not healthy within startTimeoutMs (it keeps running as 'unhealthy'
   * and turns 'running' if it recovers). Resolves at once when already running.
   */
  async start(): Promise<void> {
    if (this.#stopping) await this.#stopping.catch(() => undefined);
    if (this.#starting) return this.#starting;
    if (this.pid !== null) return;
    clearTimeout(this.#restartTimer);
    return this.#spawn();
  }

  /**
   * Stops the app for good (no restart): stopSignal to its whole process group, then
   * SIGKILL to the group after stopTimeoutMs. Resolves once no process of the group is
   * left; killed tells whether SIGKILL was needed.
   */
  stop(): Promise<{ killed: boolean }> {
    this.#stopping ??= this.#stop().finally(() => {
      this.#stopping = null;
    });
    return this.#stopping;
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  #setState(state: AppState, reason: string | null = this.#reason): void {
    const previous = this.#state;
    this.#reason = reason;
    if (state === previous) return;
    this.#state = state;
    this.emit('state', state, previous);
  }

  #spawn(): Promise<void> {
    const p = this.#spawnAndWait().finally(() => {
      this.#starting = null;
    });
    this.#starting = p;
    return p;
  }

  async #spawnAndWait(): Promise<void> {
    this.#setState('starting', null);
    const o = this.#o;
    // What is left of an earlier run (killed after a crash) may still hold the port a moment.
    const prev = this.#run;
    if (prev) await waitGroupGone(prev.leader.pid, KILL_WAIT_MS);
    const held = await whoListens(o.port);
    // stop() came while this start waited: spawning now would leave an app nobody stops.
    if (this.#state !== 'starting') throw new BgError('BG_PROCESS', `${this.color} was stopped before it started`);
    if (held) {
      // Started anyway, the app would fail to bind while the health probe found the other
      // process healthy: the preview host, or after a cutover the public one, would serve it.
      const reason = `port ${o.port} is held by ${formatHolder(held.holder)}, not by bgproxy's ${this.color} app: stop that process, or give ${this.color} another port (colors.${this.color}.port in bgproxy.json)`;
      this.#setState('failed', reason);
      this.#foreign = held.holder;
      this.#log.error({ port: o.port, holder: held.holder }, `port ${o.port} is held by another process`);
      throw new BgError('BG_PROCESS', `cannot start ${this.color}: ${reason}`);
    }
    this.#foreign = null;
    const tail = new OutputTail();
    const spawned = await spawnInGroup({
      command: o.command,
      cwd: o.cwd,
      env: o.env,
      onOutput: (chunk) => {
        tail.push(chunk);
        try {
          this.#logFile.write(chunk);
        } catch (err) {
          this.#log.warn({ err }, 'cannot write the app log');
        }
      },
    });
    if (!spawned.ok) {
      // Retrying would not help (cwd missing, /bin/sh absent): no backoff loop.
      const reason = `cannot start: ${spawned.error}`;
      this.#setState('failed', reason);
      this.#log.error({ err: spawned.error }, 'failed');
      throw new BgError('BG_PROCESS', `${this.color}: ${reason}`);
    }
    if (this.#state !== 'starting') {
      // Stopped while spawning: this process was never seen by stop(); end it here.
      signalGroup(spawned.leader.pid, 'SIGKILL');
      await waitGroupGone(spawned.leader.pid, KILL_WAIT_MS);
      throw new BgError('BG_PROCESS', `${this.color} was stopped before it started`);
    }
    const run: Run = { leader: spawned.leader, abort: new AbortController(), verified: new Set(), tail };
    const { pid } = run.leader;
    this.#run = run;
    void run.leader.exited.then((info) => {
      run.abort.abort();
      this.#onExit(run, info);
    });
    try {
      writePidFile(o.pidFile, pid);
    } catch (err) {
      this.#log.warn({ err, pidFile: o.pidFile }, 'cannot write the pid file');
    }
    this.#logFile.note(`started pid ${pid}: ${o.command}`);
    this.#log.info({ pid, port: o.port }, 'started');

    const ready = await this.#waitReady(run);
    if (ready.ok) {
      this.#setState('running', null);
      this.#log.info({ pid, ms: Date.now() - run.leader.startedAt }, 'ready');
      this.emit('ready');
      void this.#monitor(run);
      return;
    }
    // Output that is still in the pipe when the process exits comes a moment later.
    if (ready.why === 'exited') await sleep(50);
    const detail = run.tail.text();
    if (ready.why === 'timeout') {
      const why = (await this.#listensElsewhere(run)) ?? ready.reason;
      this.#setState('unhealthy', `not healthy within ${o.startTimeoutMs} ms: ${why}`);
      this.#log.warn({ pid, reason: why }, 'not ready in time');
      void this.#monitor(run);
      throw new BgError('BG_PROCESS', `${this.color} did not become healthy within ${o.startTimeoutMs} ms: ${why}`, {
        detail,
      });
    }
    if (ready.why === 'exited') {
      throw new BgError('BG_PROCESS', `${this.color} ${ready.reason} before it became healthy`, { detail });
    }
    throw new BgError('BG_PROCESS', `${this.color} was stopped before it became healthy`);
  }

  /**
   * When nothing listens on the app's port but its process tree listens on another one
   * (it ignores $PORT: a hard-coded 8000, a framework's default), says so: "app (pid N)
   * listens on 127.0.0.1:8000, not on its port 9001". null otherwise.
   */
  async #listensElsewhere(run: Run): Promise<string | null> {
    const { port } = this.#o;
    if (run.leader.exitInfo) return null;
    const here = await portListeners(port);
    if (here === null || here.all.size > 0) return null;
    const elsewhere = await listensElsewhere(run.leader.pid, port);
    if (!elsewhere || elsewhere.length === 0) return null;
    const first = elsewhere[0]!;
    const addresses = elsewhere.filter((l) => l.pid === first.pid).map((l) => l.address);
    return `app (pid ${first.pid}) listens on ${addresses.join(' and ')}, not on its port ${port}: make it listen on $PORT (bgproxy sets PORT=${port})`;
  }

  async #waitReady(run: Run): Promise<Readiness> {
    const { port, health, startTimeoutMs } = this.#o;
    const deadline = run.leader.startedAt + startTimeoutMs;
    let reason = 'no answer yet';
    for (;;) {
      if (run.leader.exitInfo) return { ok: false, why: 'exited', reason: describeExit(run.leader.exitInfo) };
      if (this.#state === 'stopping') return { ok: false, why: 'stopped', reason };
      const left = deadline - Date.now();
      if (left <= 0) return { ok: false, why: 'timeout', reason };
      const probeMs = Math.max(10, Math.min(health.timeoutMs, left));
      const r = await checkHealth(port, health.path, probeMs);
      // The port may belong to someone else once our process is gone: trust no answer then.
      if (r.ok && !run.leader.exitInfo && this.#state === 'starting') {
        const own = await ownership(port, run.leader.pid, run.verified);
        // 'none' right after an answer: a listener this check cannot see; the answer counts.
        if (own.kind !== 'foreign') return { ok: true };
        r.ok = false;
        r.reason = `port ${port} answers from ${formatHolder(own.holder)}, not from this app`;
      }
      // A last probe cut short by the deadline says less than the failure before it.
      const cutShort = probeMs < health.timeoutMs && r.reason?.startsWith('timed out');
      if (!cutShort || reason === 'no answer yet') reason = r.reason ?? `HTTP ${r.status}`;
      await sleep(Math.min(this.#o.readyPollMs ?? 150, Math.max(0, deadline - Date.now())), undefined, {
        signal: run.abort.signal,
      }).catch(() => undefined);
    }
  }

  /** Periodic health checks of a started run; flips running <-> unhealthy. */
  async #monitor(run: Run): Promise<void> {
    const { port, health } = this.#o;
    let failures = 0;
    let ownershipAt = performance.now();
    while (!run.abort.signal.aborted) {
      try {
        await sleep(health.intervalMs, undefined, { signal: run.abort.signal });
      } catch {
        return;
      }
      const r = await checkHealth(port, health.path, health.timeoutMs);
      if (run.abort.signal.aborted || this.#run !== run) return;
      // Healthy only while the answer comes from this app: a listener that another process
      // took over (or shares, with SO_REUSEPORT) serves someone else's site. Checked every
      // OWNERSHIP_EVERY_MS, and before an unhealthy app counts as healthy again.
      if (r.ok && (this.#state !== 'running' || performance.now() - ownershipAt >= OWNERSHIP_EVERY_MS)) {
        ownershipAt = performance.now();
        const own = await ownership(port, run.leader.pid, run.verified);
        if (run.abort.signal.aborted || this.#run !== run) return;
        if (own.kind === 'foreign') {
          r.ok = false;
          r.reason = `port ${port} answers from ${formatHolder(own.holder)}, not from this app`;
        }
      }
      if (r.ok) {
        failures = 0;
        if (this.#state === 'unhealthy') {
          this.#setState('running', null);
          this.#log.info({ pid: run.leader.pid }, 'healthy again');
          this.emit('ready');
        }
        continue;
      }
      failures++;
      if (this.#state === 'running' && failures >= health.unhealthyAfter) {
        this.#setState('unhealthy', `${failures} failed health checks: ${r.reason}`);
        this.#log.warn({ pid: run.leader.pid, reason: r.reason, failures }, 'unhealthy');
      }
    }
  }

  #onExit(run: Run, info: ExitInfo): void {
    this.#lastExit = info;
    this.#logFile.note(`pid ${run.leader.pid} ${describeExit(info)}`);
    if (this.#run !== run) return;
    removePidFile(this.#o.pidFile);
    if (this.#state === 'stopping') return; // stop() takes it from here
    const uptimeMs = Date.now() - run.leader.startedAt;
    // Whatever the leader left behind (workers, children) must not keep the port.
    signalGroup(run.leader.pid, 'SIGKILL');
    this.#setState('crashed', describeExit(info));
    this.#log.warn({ pid: run.leader.pid, code: info.code, signal: info.signal, uptimeMs }, 'crashed');
    this.emit('crashed', { code: info.code, signal: info.signal });

    const inMs = this.#backoff.next(uptimeMs);
    this.#setState('backoff');
    this.#log.info({ inMs, attempt: this.#backoff.attempt }, `restarting in ${inMs} ms`);
    this.emit('restarting', { inMs, attempt: this.#backoff.attempt });
    this.#restartTimer = setTimeout(() => {
      if (this.#state !== 'backoff') return;
      this.#restarts++;
      // Nobody awaits a restart; its failure shows in state, events and logs.
      this.#spawn().catch(() => undefined);
    }, inMs);
  }

  async #stop(): Promise<{ killed: boolean }> {
    clearTimeout(this.#restartTimer);
    const run = this.#run;
    if (!run || run.leader.exitInfo) {
      removePidFile(this.#o.pidFile);
      const was = this.#state;
      this.#setState('stopped', null);
      if (was !== 'stopped') this.emit('stopped', { killed: false });
      return { killed: false };
    }
    const { stopSignal, stopTimeoutMs } = this.#o;
    this.#setState('stopping', null);
    run.abort.abort();
    this.#log.info({ pid: run.leader.pid, signal: stopSignal }, 'stopping');
    signalGroup(run.leader.pid, stopSignal);
    let killed = false;
    if (!(await waitGroupGone(run.leader.pid, stopTimeoutMs))) {
      killed = true;
      const left = groupMembers(run.leader.pid);
      this.#log.warn({ pid: run.leader.pid, left, afterMs: stopTimeoutMs }, 'killed');
      this.#logFile.note(`still running ${stopTimeoutMs} ms after ${stopSignal}: SIGKILL to ${left.join(' ')}`);
      signalGroup(run.leader.pid, 'SIGKILL');
      if (!(await waitGroupGone(run.leader.pid, KILL_WAIT_MS))) {
        // Only a process stuck in the kernel (D state) survives SIGKILL this long.
        this.#log.error({ pid: run.leader.pid, left: groupMembers(run.leader.pid) }, 'group survived SIGKILL');
      }
    }
    // The leader's exit event can trail the group's disappearance by a tick.
    const exit = (await withTimeout(run.leader.exited, KILL_WAIT_MS)) ?? { code: null, signal: null };
    removePidFile(this.#o.pidFile);
    this.#setState('stopped', null);
    this.#logFile.close(); // reopened by the next start; lets an idle color's log be moved away
    this.#log.info({ pid: run.leader.pid, code: exit.code, signal: exit.signal, killed }, 'stopped');
    this.emit('stopped', { killed });
    return { killed };
  }
}

/** The promise's value, or undefined after ms; leaves no timer behind. */
async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<undefined>((r) => {
      timer = setTimeout(() => r(undefined), ms);
    })]);
  } finally {
    clearTimeout(timer);
  }
}
