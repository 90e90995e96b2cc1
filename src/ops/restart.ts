// `bgproxy restart COLOR` and `bgproxy start COLOR` (and a deploy's restart of next on its
// new release): drained, through Colors.restart, but never of a color that holds nothing
// complete to run, and (by hand) never of a color a deploy is installing into (ops/busy.ts).
import type { Color } from '../config.js';
import type { OpsContext } from './context.js';
import { assertNotDeploying, assertRunnable } from './busy.js';

/** Drains `color`, stops its app and starts it again; requests meanwhile are held. */
export async function restartColor(ctx: OpsContext, color: Color): Promise<{ cutOff: number; drainMs: number }> {
  assertNotDeploying(ctx, color, 'restart');
  return restartForRelease(ctx, color);
}

/** The deploy's own restart of the color it installed into (it holds `deploying`, so no busy check). */
export async function restartForRelease(ctx: OpsContext, color: Color): Promise<{ cutOff: number; drainMs: number }> {
  await assertRunnable(ctx, color, 'restart');
  return ctx.colors.restart(color, ctx.roleOf(color));
}

/** Starts (or restarts, undrained) `color`'s app and resolves when it is healthy. */
export async function startColor(ctx: OpsContext, color: Color): Promise<void> {
  assertNotDeploying(ctx, color, 'start');
  await assertRunnable(ctx, color, 'start');
  await ctx.colors.start(color, ctx.roleOf(color));
}
