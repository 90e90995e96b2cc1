// `bgproxy deploy`: a git commit into the NEXT color, read top to bottom:
// resolve -> (no-op?) -> checkout -> install -> hooks -> record -> restart -> healthy -> nginx -> report.
// The live color is never touched; a failure once next was changed marks next failed (on
// disk too), and leaves live serving; a failure before (a mistyped commit) changes nothing.
import path from 'node:path';
import { type Color, type Config, formatListen } from '../config.js';
import { BgError, isBgError } from '../errors.js';
import type { Logger } from '../log.js';
import { applyColorFiles, formatApply, type NginxApplyResult } from '../nginx/apply.js';
import { releaseEnv } from '../supervisor/supervisor.js';
import { checkout, fetchSource, isDirty, isLocalWorkingCopy, type Release, resolveCommit, resolveSource } from './git.js';
import { appendHistory } from './history.js';
import { clearRelease, type ReleaseInfo, readRelease, writeRelease } from './release.js';
import { runCommands } from './run-commands.js';

export interface DeployOptions {
  /** sha, tag or branch; default: the tip of SOURCE's default branch. */
  commit?: string;
  /** Local path or git URL; default app.repo, else ROOT/repo.git. */
  from?: string;
  /** Redo a deploy of the commit next already runs. */
  force?: boolean;
  /** Deploy from a local working copy with uncommitted changes. */
  allowDirty?: boolean;
  /**
   * Aborted when the deploy must end now (serve stopping, `deploy --cancel`): the running
   * command's process group is stopped, no further step runs, next is marked failed with
   * the abort's reason (a string) as the cause.
   */
  signal?: AbortSignal;
}

export interface DeployProgress {
  step: string;
  /** 'start' | 'done' for steps; 'line' for a line of command output. */
  phase: 'start' | 'done' | 'line';
  ms?: number;
  line?: string;
  /** The commit being deployed, once resolved (on the resolve step's 'done'). */
  commit?: string;
}

export interface DeployResult {
  color: Color;
  commit: string;
  shortCommit: string;
  subject: string;
  /** Nothing was done: next already ran this commit, healthy. */
  noop: boolean;
  steps: Array<{ step: string; ms: number }>;
  totalMs: number;
  /** Where the release can be looked at before it goes live. */
  preview: string | null;
  /** One line for people: `green now runs 3f2a1c9 "Fix checkout" - preview: … - go live: bgproxy cutover`. */
  message: string;
  /** nginx mode: whether next's include changed, and the test, reload and old-worker times. */
  nginx?: NginxApplyResult;
}

/** What a deploy needs from whoever runs it (serve's Bgproxy, or the CLI alone in nginx mode). */
export interface DeployHost {
  readonly config: Readonly<Config>;
  readonly log: Logger;
  nextColor(): Color;
  /** The port the proxy is bound to, when it listens. */
  listenPort(): number | null;
  /** Restarts `color` (drained) on its new release and resolves once it is healthy. */
  restartForRelease(color: Color): Promise<void>;
  /** Whether `color` runs and answers its health check now. */
  isHealthy(color: Color): Promise<boolean>;
  /** `running`: the deploy is changing the color now (see deploy/failed-mark.ts). */
  markFailed(color: Color, reason: string | null, opts?: { running?: boolean }): void;
}

/** `listenPort`: the port actually bound (listen may say 0). */
function previewUrl(config: Config, listenPort: number | null): string | null {
  const host = config.hosts.next[0];
  // nginx mode: nginx listens on config.listen (the server blocks of nginx-config), bgproxy nowhere.
  const port = config.mode === 'nginx' ? config.listen.port : (listenPort ?? config.listen.port);
  if (port === 80) return host ? `http://${host}/` : null;
  return host ? `http://${host}:${port}/` : `http://${formatListen({ host: config.listen.host, port })}/ (Host: next)`;
}

export async function deploy(
  host: DeployHost,
  opts: DeployOptions,
  onProgress: (p: DeployProgress) => void = () => {},
): Promise<DeployResult> {
  const { config } = host;
  const color = host.nextColor();
  const repoDir = path.join(config.root, color, 'repo');
  const t0 = performance.now();
  const steps: DeployResult['steps'] = [];
  let current = 'resolve';
  const step = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    if (opts.signal?.aborted) throw new BgError('BG_DEPLOY', `interrupted before ${name}`);
    current = name;
    onProgress({ step: name, phase: 'start' });
    const s = performance.now();
    const out = await fn();
    const ms = Math.round(performance.now() - s);
    steps.push({ step: name, ms });
    onProgress({ step: name, phase: 'done', ms, ...(out && typeof out === 'object' && 'commit' in out && typeof out.commit === 'string' ? { commit: out.commit } : {}) });
    return out;
  };
  const onLine = (line: string): void => onProgress({ step: current, phase: 'line', line });
  const source = resolveSource(config, opts.from);
  let release: Release | null = null;
  /** Whether the color was changed: a deploy that failed before leaves its state as it was. */
  let touched = false;
  try {
    await guardDirtySource(source, opts);
    await step('fetch', () => fetchSource(repoDir, source));
    release = await step('resolve', () => resolveCommit(repoDir, opts.commit));
    const r = release;
    const running = await readRelease(config.root, color);
    if (!opts.force && running?.commit === r.commit && (await host.isHealthy(color))) {
      // Still nginx's turn: an earlier deploy of this commit may have failed at its reload.
      const nginx = config.mode === 'nginx' ? await step('nginx', () => pickUpInclude(config, color, onLine)) : undefined;
      return { ...(await finishNoop(host, color, r, t0, steps)), ...(nginx ? { nginx } : {}) };
    }
    // From here the color is changed: not fit to go live until this deploy completes, also
    // after a restart of serve or a kill -9 in the middle (the mark is on disk).
    touched = true;
    host.markFailed(color, `the deploy of ${r.shortCommit} (started ${new Date().toISOString()}) did not complete`, { running: true });
    await clearRelease(config.root, color);
    await step('checkout', () => checkout(repoDir, r.commit));
    const cwd = path.join(repoDir, config.app.dir);
    const env = releaseEnv(config, color, { commit: r.commit, role: 'next' });
    const logFile = path.join(config.root, 'logs', `deploy-${color}.log`);
    const install = await step('install', () =>
      runCommands(config.app.install, { cwd, env, timeoutMs: config.app.installTimeoutMs, step: 'install', logFile, onLine, signal: opts.signal }),
    );
    if (config.app.hooks.afterInstall.length > 0) {
      await step('afterInstall', () =>
        runCommands(config.app.hooks.afterInstall, {
          cwd,
          env,
          timeoutMs: config.app.hooks.timeoutMs,
          step: 'afterInstall hook',
          logFile,
          onLine,
          code: 'BG_HOOK',
          signal: opts.signal,
        }),
      );
    }
    const info: ReleaseInfo = {
      commit: r.commit,
      shortCommit: r.shortCommit,
      subject: r.subject,
      source,
      ref: r.ref,
      deployedAt: new Date().toISOString(),
      installMs: install.ms,
    };
    await step('record', () => writeRelease(config.root, color, info));
    await step('restart', () => host.restartForRelease(color));
    // After the app is healthy: on a first deploy the preview host goes from the placeholder
    // straight to the running release.
    const nginx = config.mode === 'nginx' ? await step('nginx', () => pickUpInclude(config, color, onLine)) : undefined;
    host.markFailed(color, null);
    const totalMs = Math.round(performance.now() - t0);
    await appendHistory(config.root, { action: 'deploy', color, commit: r.commit, result: 'ok', durationMs: totalMs, subject: r.subject, source });
    const preview = previewUrl(config, host.listenPort());
    const message = `${color} now runs ${r.shortCommit} "${r.subject}"${preview ? ` - preview: ${preview}` : ''} - go live: bgproxy cutover`;
    host.log.info({ event: 'deployed', color, commit: r.commit, ms: totalMs }, message);
    return { color, commit: r.commit, shortCommit: r.shortCommit, subject: r.subject, noop: false, steps, totalMs, preview, message, ...(nginx ? { nginx } : {}) };
  } catch (caught) {
    // Interrupted: whatever the step said (a command killed, an app stopped), the cause is the abort.
    const err = opts.signal?.aborted ? new BgError('BG_DEPLOY', `interrupted at ${current}: ${String(opts.signal.reason)}`, { cause: caught }) : caught;
    const reason = isBgError(err) ? err.message : `${current} failed: ${(err as Error).message}`;
    if (touched) host.markFailed(color, reason);
    const durationMs = Math.round(performance.now() - t0);
    await appendHistory(config.root, {
      action: 'deploy',
      color,
      commit: release?.commit ?? null,
      result: 'failed',
      durationMs,
      message: reason,
      step: current,
    }).catch(() => undefined);
    host.log.error({ event: 'deploy-failed', color, step: current, reason }, `deploy into ${color} failed at ${current}`);
    if (isBgError(err)) {
      const msg = err.message.startsWith(current) || err.message.startsWith('interrupted') ? err.message : `${current} failed: ${err.message}`;
      throw new BgError(err.code === 'BG_HOOK' ? 'BG_HOOK' : 'BG_DEPLOY', `deploy into ${color}: ${msg}`, {
        cause: err,
        ...(err.detail ? { detail: err.detail } : {}),
      });
    }
    throw new BgError('BG_DEPLOY', `deploy into ${color}: ${reason}`, { cause: err });
  }
}

/** nginx serves next's include as loaded; a changed one (the placeholder's end) needs a reload. */
async function pickUpInclude(config: Config, color: Color, onLine: (line: string) => void): Promise<NginxApplyResult> {
  const r = await applyColorFiles(config, color);
  onLine(formatApply(color, r));
  return r;
}

async function guardDirtySource(source: string, opts: DeployOptions): Promise<void> {
  if (opts.commit || opts.allowDirty || !(await isLocalWorkingCopy(source))) return;
  if (await isDirty(source)) {
    throw new BgError(
      'BG_DEPLOY',
      `${source} has uncommitted changes: commit them, name a commit, or pass --allow-dirty`,
    );
  }
}

async function finishNoop(
  host: DeployHost,
  color: Color,
  r: Release,
  t0: number,
  steps: DeployResult['steps'],
): Promise<DeployResult> {
  const totalMs = Math.round(performance.now() - t0);
  await appendHistory(host.config.root, { action: 'deploy', color, commit: r.commit, result: 'noop', durationMs: totalMs });
  const message = `${color} already runs ${r.shortCommit} "${r.subject}", healthy: nothing to do (--force redeploys)`;
  return {
    color,
    commit: r.commit,
    shortCommit: r.shortCommit,
    subject: r.subject,
    noop: true,
    steps,
    totalMs,
    preview: previewUrl(host.config, host.listenPort()),
    message,
  };
}
