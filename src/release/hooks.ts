// Release hooks around a cutover (app.hooks.beforeCutover / afterCutover): the app's own
// commands, run in the color's checkout with the app's environment, output streamed and
// appended to ROOT/logs/deploy-COLOR.log next to its install output. afterInstall runs
// inside deploy (deploy/deploy.ts) with the same runner.
import { appendFile } from 'node:fs/promises';
import path from 'node:path';
import type { Color, Config, Role } from '../config.js';
import { runCommands } from '../deploy/run-commands.js';
import { BgError, isBgError } from '../errors.js';
import { releaseEnv } from '../supervisor/supervisor.js';

export type CutoverHook = 'beforeCutover' | 'afterCutover';

export interface HookResult {
  hook: CutoverHook;
  color: Color;
  ok: boolean;
  ms: number;
  commands: number;
  /** Why it failed (names the hook and the command). */
  error?: string;
  /** The last lines of its output, when it failed. */
  detail?: string;
}

export interface HookContext {
  commit: string | null;
  /** The role `color` has while the hook runs: next before the switch, live after. */
  role: Role;
  /** What the hook runs for, as BG_ACTION: cutover, rollback or auto-rollback. */
  action: string;
  onLine?: (line: string) => void;
}

export function hookLogFile(config: Config, color: Color): string {
  return path.join(config.root, 'logs', `deploy-${color}.log`);
}

/**
 * Runs app.hooks[hook] against `color`; null when the hook has no commands. Never throws:
 * a failure is a result with ok false, and the caller decides whether it aborts.
 */
export async function runHook(config: Config, hook: CutoverHook, color: Color, ctx: HookContext): Promise<HookResult | null> {
  const commands = config.app.hooks[hook];
  if (commands.length === 0) return null;
  const logFile = hookLogFile(config, color);
  const release = ctx.commit ? ctx.commit.slice(0, 7) : 'no release';
  await appendFile(logFile, `# ${new Date().toISOString()} ${hook} hook (${ctx.action}) on ${color} ${release}\n`).catch(() => undefined);
  const t0 = performance.now();
  const env = { ...releaseEnv(config, color, { commit: ctx.commit, role: ctx.role }), BG_HOOK: hook, BG_ACTION: ctx.action };
  try {
    await runCommands(commands, {
      cwd: path.join(config.root, color, 'repo', config.app.dir),
      env,
      timeoutMs: config.app.hooks.timeoutMs,
      step: `${hook} hook`,
      logFile,
      ...(ctx.onLine ? { onLine: ctx.onLine } : {}),
      code: 'BG_HOOK',
    });
    return { hook, color, ok: true, ms: Math.round(performance.now() - t0), commands: commands.length };
  } catch (err) {
    const e = isBgError(err) ? err : new BgError('BG_HOOK', `${hook} hook failed: ${(err as Error).message}`);
    return {
      hook,
      color,
      ok: false,
      ms: Math.round(performance.now() - t0),
      commands: commands.length,
      error: e.message,
      ...(e.detail ? { detail: e.detail } : {}),
    };
  }
}

/** The error a failed beforeCutover hook aborts the cutover with. */
export function hookError(r: HookResult, what: string): BgError {
  return new BgError('BG_HOOK', `${what}: ${r.error ?? `${r.hook} hook failed`}; live is unchanged`, r.detail ? { detail: r.detail } : undefined);
}
