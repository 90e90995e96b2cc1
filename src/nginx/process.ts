// The nginx process as bgproxy drives it: its test and reload commands, and its old workers
// after a reload. Shared by the cutover and by a deploy that changes next's include.
import { readFileSync } from 'node:fs';
import type { Config } from '../config.js';
import { BgError, isBgError } from '../errors.js';

// ---------------------------------------------------------------------------------------------
// Commands: through /bin/sh so they may be `sudo nginx -s reload` or `systemctl reload nginx`.

export async function runNginx(what: 'test' | 'reload', command: string, timeoutMs = 60_000): Promise<string> {
  const { execa } = await import('execa');
  const r = await execa('/bin/sh', ['-c', command], { reject: false, all: true, stdin: 'ignore', timeout: timeoutMs });
  const output = (r.all ?? '').trim();
  if (r.exitCode === 0 && !r.timedOut) return output;
  const first = output.split('\n').find((l) => /emerg|error|fail|denied/i.test(l)) ?? output.split('\n')[0] ?? '';
  const how = r.timedOut ? `timed out after ${timeoutMs} ms` : `exited ${r.exitCode ?? r.signal}`;
  throw new BgError('BG_NGINX', `nginx ${what} failed (${command} ${how})${first ? `: ${first}` : ''}`, {
    detail: output.split('\n').slice(-20).join('\n'),
  });
}

/** `err` as a BgError (BG_NGINX unless it has a code) with `suffix`, what was restored, appended. */
export function withSuffix(err: unknown, suffix: string): BgError {
  if (isBgError(err)) return new BgError(err.code, `${err.message}${suffix}`, { cause: err, detail: err.detail });
  return new BgError('BG_NGINX', `${(err as Error).message}${suffix}`, { cause: err });
}

// ---------------------------------------------------------------------------------------------
// Old workers. After a reload nginx's previous workers finish their requests ("worker process is
// shutting down") and exit; keep-alive and websocket connections can hold them. We snapshot the
// master's children before the reload and wait for those pids to go.

function readPid(file: string): number | null {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** nginx.pidFile when configured; else Debian's /run/nginx.pid; else the only master running. */
function masterPid(config: Config, rows: { pid: number; args: string }[]): number | null {
  const running = (pid: number | null): number | null => (pid !== null && rows.some((r) => r.pid === pid) ? pid : null);
  if (config.nginx.pidFile !== null) return running(readPid(config.nginx.pidFile));
  const debian = running(readPid('/run/nginx.pid'));
  if (debian !== null) return debian;
  const masters = rows.filter((r) => r.args.startsWith('nginx: master process'));
  return masters.length === 1 && masters[0] ? masters[0].pid : null;
}

/** Pids of the nginx master's children now, or null when the master cannot be told apart. */
export async function nginxChildren(config: Config): Promise<number[] | null> {
  const { execa } = await import('execa');
  const r = await execa('ps', ['-e', '-o', 'pid=,ppid=,args='], { reject: false, stdin: 'ignore', timeout: 10_000 });
  if (r.exitCode !== 0) return null;
  const rows = r.stdout.split('\n').flatMap((line) => {
    const m = /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(line);
    return m ? [{ pid: Number(m[1]), ppid: Number(m[2]), args: m[3] ?? '' }] : [];
  });
  const master = masterPid(config, rows);
  return master === null ? null : rows.filter((row) => row.ppid === master).map((row) => row.pid);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Waits up to timeoutMs for the pids to exit; returns how many are left. */
export async function waitGone(pids: number[] | null, timeoutMs: number): Promise<number> {
  if (pids === null) return 0;
  const deadline = performance.now() + timeoutMs;
  let left = pids.filter(alive);
  while (left.length > 0 && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 25));
    left = left.filter(alive);
  }
  return left.length;
}

/**
 * After files were put back (`back` says which): reloads nginx with them when a reload had
 * been attempted, and returns the end of the error message, what state nginx is in.
 */
export async function reloadRestored(config: Config, back: string, reload: boolean, timeoutMs?: number): Promise<string> {
  if (!reload) return `${back} (nginx was not reloaded)`;
  try {
    await runNginx('reload', config.nginx.reloadCommand, timeoutMs);
    return `${back} and nginx was reloaded with them`;
  } catch (err) {
    return `${back}, but reloading nginx with them failed: ${(err as Error).message}`;
  }
}
