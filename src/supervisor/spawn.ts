// Spawning an app command as the leader of its own process group, and its pid file.
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** ISO time of the exit. */
  at: string;
}

/** A spawned app: its pid is also its process group id. */
export interface GroupLeader {
  pid: number;
  startedAt: number;
  /** Resolves when the leader exits (not when its output pipes close). */
  exited: Promise<ExitInfo>;
  /** Set synchronously on exit, before `exited` resolves. */
  exitInfo: ExitInfo | null;
}

export type SpawnResult = { ok: true; leader: GroupLeader } | { ok: false; error: string };

/**
 * Runs `command` with /bin/sh in a new process group, stdin closed, stdout and stderr to
 * onOutput. Spawning fails only when the process cannot be created at all (cwd missing,
 * no /bin/sh); a command that is not found is a shell exiting 127.
 */
export async function spawnInGroup(opts: {
  command: string;
  cwd: string;
  env: Record<string, string>;
  onOutput: (chunk: Buffer) => void;
}): Promise<SpawnResult> {
  const { execa } = await import('execa');
  const child = execa('/bin/sh', ['-c', execIfSimple(opts.command)], {
    cwd: opts.cwd,
    env: opts.env,
    extendEnv: true,
    // Its own process group: a stop signals -pid and reaches every descendant.
    detached: true,
    cleanup: false,
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
    buffer: false,
    reject: false,
  });
  if (child.pid === undefined) {
    const result = await child;
    return { ok: false, error: result.originalMessage || result.shortMessage || 'spawn failed' };
  }
  // The promise settles when the output pipes close, which children holding them can
  // delay well past the exit; the 'exit' event is what tracks the process.
  child.catch(() => undefined);
  child.stdout?.on('data', opts.onOutput);
  child.stderr?.on('data', opts.onOutput);
  let resolveExit!: (e: ExitInfo) => void;
  const leader: GroupLeader = {
    pid: child.pid,
    startedAt: Date.now(),
    exited: new Promise((r) => {
      resolveExit = r;
    }),
    exitInfo: null,
  };
  child.once('exit', (code, signal) => {
    leader.exitInfo = { code, signal, at: new Date().toISOString() };
    resolveExit(leader.exitInfo);
  });
  return { ok: true, leader };
}

/**
 * `exec cmd` for a plain command, so the app replaces the shell: the pid file then holds
 * gunicorn's master (as in the recipe, for `kill -HUP $(cat app.pid)`), and the exit
 * status is the app's own. dash does not do this by itself. Anything with shell syntax
 * beyond words and $expansions (operators, redirections, quotes, leading VAR=x) runs as
 * written: a wrong guess there would break the command, a missed exec costs nothing.
 */
export function execIfSimple(command: string): string {
  const c = command.trim();
  if (/[;&|<>()`'"\\\n{}]/.test(c) || /^[A-Za-z_][A-Za-z0-9_]*=/.test(c) || /^exec\s/.test(c)) return command;
  return `exec ${c}`;
}

export function describeExit(e: { code: number | null; signal: NodeJS.Signals | null }): string {
  return e.signal ? `was killed by ${e.signal}` : `exited with code ${e.code}`;
}

/** Replaces the pid file atomically: a reader sees the old pid or the new one, never a partial file. */
export function writePidFile(file: string, pid: number): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${pid}\n`);
  renameSync(tmp, file);
}

export function removePidFile(file: string): void {
  rmSync(file, { force: true });
}
