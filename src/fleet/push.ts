// `bgproxy fleet push [REF]`: git push of REF, from the app's checkout, to every server's
// ROOT/repo.git over the same ssh (git's own protocol, nothing of ours on the server).
import { execFile, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { BgError } from '../errors.js';
import type { FleetServer } from './config.js';
import { appendFleetHistory } from './history.js';
import { describeFailure, type FleetRun, type Outcome } from './run.js';

const run = promisify(execFile);

export interface PushTarget {
  commit: string;
  /** The ref pushed on every server: refs/heads/<branch> or refs/tags/<tag>. */
  ref: string;
}

async function git(cwd: string, args: string[]): Promise<string | null> {
  try {
    return (await run('git', args, { cwd })).stdout.trim();
  } catch {
    return null;
  }
}

/** REF (default HEAD) as a commit and the branch or tag to push it to. */
export async function resolvePushTarget(cwd: string, ref = 'HEAD'): Promise<PushTarget> {
  const commit = await git(cwd, ['rev-parse', '--verify', '--quiet', `${ref}^{commit}`]);
  if (!commit) throw new BgError('BG_USAGE', `${ref}: no such commit in ${cwd} (fleet push runs in the app's git checkout)`);
  if (ref === 'HEAD') {
    const branch = await git(cwd, ['symbolic-ref', '--quiet', 'HEAD']);
    if (!branch) throw new BgError('BG_USAGE', 'HEAD is detached: name a branch or tag to push');
    return { commit, ref: branch };
  }
  const full = await git(cwd, ['rev-parse', '--symbolic-full-name', ref]);
  if (full && /^refs\/(heads|tags)\//.test(full)) return { commit, ref: full };
  throw new BgError('BG_USAGE', `${ref} is not a branch or tag: fleet push pushes a branch or a tag`);
}

function pushOne(fleet: FleetRun, server: Readonly<FleetServer>, cwd: string, target: PushTarget, force: boolean): Promise<void> {
  // An IPv6 address (an inventory's ansible_host) goes in brackets in a URL.
  const dest = server.ssh.replace(/^(.*@)?([^@]*:[^@]*)$/, (_m, user: string | undefined, host: string) => `${user ?? ''}[${host}]`);
  const url = `ssh://${dest}${server.root.replace(/\/+$/, '')}/repo.git`;
  const args = ['push', '--porcelain', ...(force ? ['--force'] : []), url, `${target.commit}:${target.ref}`];
  return new Promise((resolve, reject) => {
    const child = spawn('git', args, {
      cwd,
      env: { ...process.env, GIT_SSH_COMMAND: fleet.ssh.gitSshCommand(server), GIT_TERMINAL_PROMPT: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const lines: string[] = [];
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream! }).on('line', (l) => {
        if (l.trim() === '' || l === 'Done' || l.startsWith('To ')) return;
        lines.push(l);
        fleet.line(server, l);
      });
    }
    child.once('error', (err) => reject(new BgError('BG_FLEET', `${server.name}: cannot run git: ${err.message}`)));
    child.once('close', (code) => {
      if (code === 0) return resolve();
      const why = lines.filter((l) => !l.startsWith('!')).at(-1) ?? lines.at(-1) ?? `git push exited with ${code}`;
      const unreachable = lines.some((l) => /Could not read from remote repository|ssh: |Connection (refused|closed)/.test(l));
      reject(new BgError(unreachable ? 'BG_UNREACHABLE' : 'BG_FLEET', `${server.name}: push failed: ${why}`));
    });
  });
}

/** Pushes to every server; throws BG_FLEET naming the ones that failed. */
export async function fleetPush(fleet: FleetRun, cwd: string, ref: string | undefined, force: boolean): Promise<PushTarget & { outcomes: Outcome<void>[] }> {
  const t0 = performance.now();
  const target = await resolvePushTarget(cwd, ref);
  fleet.say(`pushing ${target.commit.slice(0, 7)} as ${target.ref} to ${fleet.servers.length} servers`);
  const outcomes = await fleet.each((s) => pushOne(fleet, s, cwd, target, force));
  const servers = Object.fromEntries(outcomes.map((o) => [o.server.name, o.state === 'ok' ? 'pushed' : o.state === 'failed' ? describeFailure(o.error) : 'not started']));
  const failed = outcomes.filter((o) => o.state !== 'ok');
  const result = failed.length === 0 ? 'ok' : fleet.interrupted ? 'interrupted' : 'failed';
  await appendFleetHistory(fleet.fleet.file, {
    action: 'push',
    result,
    commit: target.commit,
    durationMs: Math.round(performance.now() - t0),
    servers,
  });
  if (failed.length > 0) {
    throw new BgError('BG_FLEET', `push of ${target.commit.slice(0, 7)} failed on ${failed.map((o) => o.server.name).join(', ')}`, {
      detail: failed.map((o) => (o.state === 'failed' ? o.error.message : `${o.server.name}: not started`)).join('\n'),
    });
  }
  return { ...target, outcomes };
}
