// `bgproxy cutover`, and the release every change of the live color goes through (cutover,
// rollback, auto-rollback, deploy --cutover), read top to bottom in `release`: validate ->
// beforeCutover hook and warm-up -> gate -> switch (ops/switch.ts) -> afterCutover -> watch,
// recorded in ROOT/history.jsonl either way.
import type { Color } from '../config.js';
import { releasedCommit } from '../deploy/release.js';
import { BgError } from '../errors.js';
import { runHook } from '../release/hooks.js';
import { newReport, type ReleaseAction } from '../release/report.js';
import { beforeSwitch, recorded, releaseProgress } from '../release/steps.js';
import type { CutoverOptions, CutoverProgress, CutoverResult } from '../types.js';
import type { OpsContext } from './context.js';
import { switchTo } from './switch.js';

/**
 * Makes next live and live next: checks next is healthy, runs beforeCutover and the
 * warm-up against it, switches, waits for the drain, runs afterCutover, and (with
 * watchMs) starts the post-cutover watch.
 */
export function cutover(ctx: OpsContext, opts: CutoverOptions = {}, onProgress?: (p: CutoverProgress) => void): Promise<CutoverResult> {
  return ctx.locked('cutover', async () => {
    const r = await release(ctx, 'cutover', () => ctx.state.roles.next, opts, onProgress);
    // A canary to the color now live is complete: every live request goes there anyway.
    await ctx.traffic.endCanary('completed by cutover');
    return r;
  });
}

/**
 * One cutover, rollback or auto-rollback, top to bottom:
 * validate -> beforeCutover hook and warm-up -> persist -> switch -> drain -> afterCutover -> watch.
 * The caller holds the lock. Everything before the switch may fail and leaves live as it was.
 */
export async function release(
  ctx: OpsContext,
  action: ReleaseAction,
  pick: () => Color | Promise<Color>,
  opts: CutoverOptions,
  onProgress?: (p: CutoverProgress) => void,
  reason?: string,
): Promise<CutoverResult> {
  const report = newReport(action);
  if (reason) report.reason = reason;
  ctx.state.lastRelease = report;
  const progress = releaseProgress(ctx.config(), (p) => {
    ctx.emit('cutover-progress', { ...p, action: report.action });
    onProgress?.(p);
  });
  return recorded(ctx.config().root, ctx.log, report, () => ctx.state.roles.next, async () => {
    const color = await pick();
    report.color = color;
    if (color === ctx.state.roles.live) throw new BgError('BG_STATE', `${color} is already live`);
    if (!opts.force) await ctx.assertHealthy(color);
    const watchMs = ctx.watch.msFor(action, opts);
    const commit = await releasedCommit(ctx.config().root, color);

    if (action === 'cutover') await beforeSwitch(ctx.config(), color, commit, report, progress);
    if (opts.gate) {
      report.step = 'gate';
      await opts.gate({ color, commit });
    }
    const baseline = ctx.watch.baseline(color, ctx.state.roles.live, opts);
    report.step = 'switch';
    const wasCommit = await releasedCommit(ctx.config().root, ctx.state.roles.live);
    const r = { ...(await progress.step('switch', () => switchTo(ctx, color, opts, action !== 'cutover'))), wasCommit };
    ctx.state.previous = { color: r.was, commit: wasCommit };
    delete report.step;

    const after = await progress.step('afterCutover', () =>
      runHook(ctx.config(), 'afterCutover', color, { commit, role: 'live', action, onLine: progress.line('afterCutover') }),
    );
    if (after) {
      report.hooks.afterCutover = after;
      // The switch stays: the new release is live and serving; only the hook's own work is missing.
      if (!after.ok) ctx.log.error({ event: 'hook-failed', hook: 'afterCutover', color, error: after.error }, after.error ?? '');
    }
    const watch = watchMs > 0 ? ctx.watch.start(color, r.was, watchMs, baseline) : null;
    return {
      ...r,
      ...(report.hooks.beforeCutover || report.hooks.afterCutover ? { hooks: { ...report.hooks } } : {}),
      ...(report.warmup ? { warmup: report.warmup } : {}),
      ...(watch ? { watch } : {}),
    };
  });
}

