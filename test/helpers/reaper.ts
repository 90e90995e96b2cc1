// The test suite's process reaper, loaded into every test process by tap's node-arg
// (package.json) right after tsx. A test that times out, throws past its teardown or is
// killed must not leave `bgproxy serve`, apps, nginx or sshd running with parent 1.
//
// It records every child process the test spawns (its pid and start time, so that a pid
// reused by another process is never mistaken for it) and marks the test's environment
// with a token that every descendant inherits. A small watchdog (reaper-watchdog.mjs, plain
// Node so that it starts in a tenth of a second) holds the other end of a pipe; when the
// test process is gone, however it went (exit, tap's SIGALRM and SIGKILL at its timeout,
// a crash), the pipe closes and the watchdog stops and kills what the test left: the
// recorded children and their descendants, the members of their process groups, and every
// process carrying the token. Then it removes the temp dirs the test registered.
//
// An exit hook in the test process itself (signal-exit) cannot do this: SIGKILL runs no
// hook, and tap sends SIGKILL half a second after SIGALRM.
import { type ChildProcess, ChildProcess as ChildProcessClass, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The environment variable carrying the token; a process that has it is reaped. */
export const REAPER_ENV = 'BGPROXY_TEST_REAPER';

const WATCHDOG = path.join(path.dirname(fileURLToPath(import.meta.url)), 'reaper-watchdog.mjs');

/** Field 22 of /proc/PID/stat: when the process started, in clock ticks since boot. */
export function startTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: count from its end.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

class Reaper {
  readonly token = `${process.pid}-${randomBytes(6).toString('hex')}`;
  #watchdog: ChildProcess | null = null;
  #spawning = false;
  readonly #pending: string[] = [];

  /** Marks the environment and records every child process spawned from now on. */
  install(): void {
    process.env[REAPER_ENV] = this.token;
    const reaper = this;
    // Every child_process API (and execa) ends in ChildProcess#spawn; spawnSync does not,
    // and needs no record: it has finished when it returns (what it left carries the token).
    // (An internal method, not in @types/node.)
    const proto = ChildProcessClass.prototype as unknown as { spawn(this: ChildProcess, ...args: unknown[]): unknown };
    const original = proto.spawn;
    proto.spawn = function (this: ChildProcess, ...args: unknown[]) {
      const r = original.apply(this, args);
      if (this.pid !== undefined && !reaper.#spawning) reaper.#send(`child ${this.pid} ${startTime(this.pid) ?? '-'}`);
      return r;
    };
  }

  /** Removes DIR (recursively) once the test process is gone, if it still exists then. */
  removeAtExit(dir: string): void {
    this.#send(`dir ${dir}`);
  }

  #send(line: string): void {
    this.#pending.push(line);
    if (!this.#watchdog) this.#startWatchdog();
    const stdin = this.#watchdog?.stdin;
    if (!stdin?.writable) return;
    stdin.write(`${this.#pending.join('\n')}\n`);
    this.#pending.length = 0;
  }

  #startWatchdog(): void {
    const env = { ...process.env };
    delete env[REAPER_ENV];
    this.#spawning = true;
    try {
      // Its own session: tap's signals to the test's group do not reach it. stderr is the
      // test's own, so that what it had to kill shows in the test output.
      this.#watchdog = spawn(process.execPath, [WATCHDOG, this.token, String(process.pid), startTime(process.pid) ?? '-'], {
        stdio: ['pipe', 'ignore', 'inherit'],
        detached: true,
        env,
      });
    } finally {
      this.#spawning = false;
    }
    // The test process must exit as if the watchdog were not there.
    this.#watchdog.unref();
    const stdin = this.#watchdog.stdin as (NodeJS.WritableStream & { unref?: () => void; on: NodeJS.WritableStream['on'] }) | null;
    stdin?.unref?.();
    stdin?.on('error', () => {});
    this.#watchdog.on('error', () => {});
  }
}

const installed = Symbol.for('bgproxy.test.reaper');
type WithReaper = { [installed]?: Reaper | null };

/**
 * The reaper of this process: null in a process that is itself a descendant of a test (it
 * carries the token; the test's reaper answers for it).
 */
export function reaper(): Reaper | null {
  const g = globalThis as WithReaper;
  if (g[installed] === undefined) {
    if (process.env[REAPER_ENV] || process.platform !== 'linux') {
      g[installed] = null;
    } else {
      const r = new Reaper();
      r.install();
      g[installed] = r;
    }
  }
  return g[installed] ?? null;
}

reaper();
