// Runs a list of shell commands (app.install, release hooks) one after the other, the
// way a person would type them: /bin/sh -c, output streamed as it comes, the last lines
// kept for the error message. Each command gets its own process group so a timeout
// reaches whatever it started (pip's subprocesses, npm's scripts), not just the shell.
import { spawn } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { BgError, type BgErrorCode } from '../errors.js';
import { withoutGitRepoEnv } from './git.js';

export interface RunCommandsOptions {
  cwd: string;
  /** Added to process.env, minus GIT_DIR & co. (e.g. appEnv(config, color)). */
  env: Record<string, string>;
  /** Per command. */
  timeoutMs: number;
  /** Step name used in errors: `${step} failed: …` (e.g. 'install', 'afterInstall hook'). */
  step: string;
  /** Output is appended here (created if missing), each command preceded by "$ cmd". */
  logFile?: string;
  /** Each line of output (stdout and stderr interleaved), without its newline. */
  onLine?: (line: string) => void;
  /** Error code thrown on failure; default 'BG_DEPLOY' (hooks use 'BG_HOOK'). */
  code?: BgErrorCode;
  /** Aborted (serve stopping, deploy --cancel): the running command's group is stopped, no further command runs. */
  signal?: AbortSignal;
}

const TAIL_LINES = 20;
/** After SIGTERM on timeout, time the group has before SIGKILL. */
const KILL_GRACE_MS = 2000;
/** After the shell exits, time a background child holding its stdout gets before we stop reading. */
const DRAIN_AFTER_EXIT_MS = 500;

/** Runs the commands in order; resolves with the total duration, throws on the first failure. */
export async function runCommands(commands: readonly string[], opts: RunCommandsOptions): Promise<{ ms: number }> {
  const t0 = performance.now();
  const log = opts.logFile === undefined ? null : createWriteStream(opts.logFile, { flags: 'a' });
  const logDone = log === null ? Promise.resolve() : new Promise<void>((resolve) => log.once('close', resolve));
  // A failing log file must not fail the install; it is only a copy.
  log?.on('error', () => {});
  try {
    for (const cmd of commands) {
      if (opts.signal?.aborted) throw new BgError(opts.code ?? 'BG_DEPLOY', `${opts.step} interrupted before "${cmd}"`);
      await runOne(cmd, opts, log);
    }
  } finally {
    log?.end();
    await logDone;
  }
  return { ms: Math.round(performance.now() - t0) };
}

async function runOne(cmd: string, opts: RunCommandsOptions, log: WriteStream | null): Promise<void> {
  log?.write(`$ ${cmd}\n`);
  const tail = new LineTail(opts.onLine);
  const child = spawn('/bin/sh', ['-c', cmd], {
    cwd: opts.cwd,
    // GIT_DIR & co. leak in when deploy runs from a git hook; they would misdirect the commands' own git calls.
    env: { ...withoutGitRepoEnv(process.env), ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own process group, so the timeout can kill all of it
  });
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (text: string) => {
    log?.write(text);
    tail.push('out', text);
  });
  child.stderr.on('data', (text: string) => {
    log?.write(text);
    tail.push('err', text);
  });

  let timedOut = false;
  let aborted = false;
  let killTimer: NodeJS.Timeout | undefined;
  const stopGroup = (): void => {
    killGroup(child.pid, 'SIGTERM');
    killTimer ??= setTimeout(() => killGroup(child.pid, 'SIGKILL'), KILL_GRACE_MS);
  };
  const timer = setTimeout(() => {
    timedOut = true;
    stopGroup();
  }, opts.timeoutMs);
  const onAbort = (): void => {
    aborted = true;
    stopGroup();
  };
  if (opts.signal?.aborted) onAbort();
  else opts.signal?.addEventListener('abort', onAbort, { once: true });

  const outcome = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>(
    (resolve) => {
      child.once('error', (error) => resolve({ code: null, signal: null, error }));
      child.once('exit', (code, signal) => resolve({ code, signal }));
    },
  );
  clearTimeout(timer);
  clearTimeout(killTimer);
  opts.signal?.removeEventListener('abort', onAbort);
  if (timedOut || aborted) killGroup(child.pid, 'SIGKILL'); // the shell is gone; make sure its children are too
  await drainStreams(child.stdout, child.stderr);
  tail.flush();

  const fail = (why: string): BgError =>
    new BgError(opts.code ?? 'BG_DEPLOY', `${opts.step} failed: "${cmd}" ${why}`, { detail: tail.text() });
  if (outcome.error) throw fail(`could not start: ${outcome.error.message}`);
  if (aborted) throw fail('was interrupted');
  if (timedOut) throw fail(`timed out after ${formatSeconds(opts.timeoutMs)}`);
  if (outcome.signal !== null) throw fail(`was killed by ${outcome.signal}`);
  if (outcome.code !== 0) throw fail(`exited with code ${outcome.code}`);
}

function killGroup(pid: number | undefined, sig: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, sig);
  } catch {
    // ESRCH: the group is already gone.
  }
}

/** Waits for both pipes to end, but not for a daemon the command left holding them. */
async function drainStreams(...streams: NodeJS.ReadableStream[]): Promise<void> {
  const ended = streams.map(
    (s) =>
      new Promise<void>((resolve) => {
        const r = s as NodeJS.ReadableStream & { readableEnded?: boolean; destroyed?: boolean };
        if (r.readableEnded || r.destroyed) return resolve();
        s.once('end', resolve);
        s.once('close', resolve);
      }),
  );
  let timer: NodeJS.Timeout | undefined;
  const gaveUp = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, DRAIN_AFTER_EXIT_MS);
  });
  await Promise.race([Promise.all(ended), gaveUp]);
  clearTimeout(timer);
  for (const s of streams) (s as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
}

function formatSeconds(ms: number): string {
  return ms < 1000 ? `${ms}ms` : `${Math.round(ms / 100) / 10}s`;
}

/** Splits stdout and stderr into lines (each its own partial line), hands each to onLine, keeps the last few. */
class LineTail {
  readonly #partial = { out: '', err: '' };
  readonly #lines: string[] = [];
  constructor(readonly onLine?: (line: string) => void) {}
  push(stream: 'out' | 'err', text: string): void {
    const parts = (this.#partial[stream] + text).split('\n');
    this.#partial[stream] = parts.pop() ?? '';
    for (const line of parts) this.#add(line);
  }
  flush(): void {
    for (const stream of ['out', 'err'] as const) {
      if (this.#partial[stream] !== '') this.#add(this.#partial[stream]);
      this.#partial[stream] = '';
    }
  }
  text(): string {
    return this.#lines.join('\n');
  }
  #add(raw: string): void {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    this.#lines.push(line);
    if (this.#lines.length > TAIL_LINES) this.#lines.shift();
    this.onLine?.(line);
  }
}
