// `bgproxy deploy` as serve runs it: one locked deploy of a commit into the next color (the
// steps themselves are deploy/deploy.ts), shown in status while it runs, interrupted by
// serve's stop or `deploy --cancel`, and with --cutover made live through ops/cutover.ts.
import type { Color } from '../config.js';
import { type DeployHost, type DeployOptions, type DeployProgress, type DeployResult, deploy as deployNext } from '../deploy/deploy.js';
import { BgError } from '../errors.js';
import type { DeployOutcome } from '../metrics/ops.js';
import type { CutoverResult } from '../types.js';
import type { OpsContext } from './context.js';
import { release } from './cutover.js';

/** Deploys a commit into the next color (see deploy/deploy.ts); with cutover, makes it live once healthy. */
export function deploy(
  ctx: OpsContext,
  opts: DeployOptions & { cutover?: boolean; watchMs?: number } = {},
  onProgress?: (p: DeployProgress) => void,
): Promise<DeployResult & { cutover?: CutoverResult }> {
  return ctx.locked('deploy', async () => {
    const canary = ctx.traffic.canaryColor;
    if (canary !== null) {
      throw new BgError('BG_STATE', `a canary sends live traffic to ${canary}, the color a deploy would replace: complete it (bgproxy cutover) or end it (bgproxy rollback) first`);
    }
    const abort = new AbortController();
    const run = { abort, color: ctx.state.roles.next, commit: null as string | null, step: 'start', startedAt: Date.now() };
    ctx.state.deploying = run;
    let outcome: DeployOutcome = 'failed';
    let result: DeployResult;
    try {
      result = await deployNext(deployHost(ctx), { ...opts, signal: abort.signal }, (p) => {
        if (p.phase === 'start') run.step = p.step;
        if (p.commit) run.commit = p.commit;
        ctx.emit('deploy-progress', p);
        onProgress?.(p);
      });
      outcome = result.noop ? 'noop' : 'ok';
    } finally {
      ctx.state.deploying = null;
      ctx.counters.deploys[outcome]++;
    }
    if (!opts.cutover) return result;
    if (abort.signal.aborted) throw new BgError('BG_DEPLOY', `deploy into ${result.color} finished, but no cutover: ${String(abort.signal.reason)}`);
    const cut = await release(ctx, 'cutover', () => result.color, opts.watchMs === undefined ? {} : { watchMs: opts.watchMs }, onProgress);
    return { ...result, cutover: cut };
  });
}

/** What deploy/deploy.ts needs from the Bgproxy it runs in. */
function deployHost(ctx: OpsContext): DeployHost {
  return {
    config: ctx.config(),
    log: ctx.log,
    nextColor: () => ctx.state.roles.next,
    listenPort: () => {
      const listen = ctx.listenAddress();
      return listen ? Number(listen.slice(listen.lastIndexOf(':') + 1)) : null;
    },
    markFailed: (color, reason, opts) => ctx.markFailed(color, reason, opts),
    isHealthy: (color) => ctx.colors.isHealthy(color),
    restartForRelease: async (color) => {
      if (ctx.colors.supervisor) {
        await ctx.restartColor(color);
        return;
      }
      // Apps started another way: bgproxy cannot restart them; it can only check.
      ctx.log.warn({ color }, `no app.start: restart the ${color} app yourself to run the new release`);
    },
  };
}

/**
 * Ends the deploy running now, if any (serve stopping, `deploy --cancel`): its commands'
 * process groups are stopped, no further step runs, next is marked failed with `reason`.
 * Returns what was interrupted, or null when no deploy runs.
 */
export function interruptDeploy(ctx: OpsContext, reason: string): { color: Color; commit: string | null; step: string } | null {
  const d = ctx.state.deploying;
  if (!d || d.abort.signal.aborted) return null;
  ctx.log.warn({ event: 'deploy-interrupted', color: d.color, step: d.step, reason }, `interrupting the deploy into ${d.color} (${d.step}): ${reason}`);
  d.abort.abort(reason);
  return { color: d.color, commit: d.commit, step: d.step };
}

