// `bgproxy rollback`: the previous live color live again, if it still holds the release it
// served (a switch back through ops/cutover.ts's release, without beforeCutover or warm-up);
// during a canary, the canary ends instead. And the rollback the post-cutover watch makes
// by itself when it trips.
import type { Color } from '../config.js';
import { appendHistory, readHistory } from '../deploy/history.js';
import { releasedCommit } from '../deploy/release.js';
import { BgError } from '../errors.js';
import { percentOf } from '../traffic/traffic.js';
import type { CutoverOptions, CutoverProgress, CutoverResult } from '../types.js';
import type { OpsContext } from './context.js';
import { release } from './cutover.js';

/** Makes the previous live color live again (a switch back with the health check; no beforeCutover, no warm-up); during a canary, ends it. */
export function rollback(ctx: OpsContext, opts: CutoverOptions = {}, onProgress?: (p: CutoverProgress) => void): Promise<CutoverResult> {
  return ctx.locked('rollback', async () => {
    if (ctx.traffic.canaryColor !== null) return endCanary(ctx);
    return release(ctx, 'rollback', () => rollbackTarget(ctx), opts, onProgress);
  });
}

/** Rollback during a canary: live keeps live, the canary color's live requests finish there. */
async function endCanary(ctx: OpsContext): Promise<CutoverResult> {
  const t0 = performance.now();
  const ended = (await ctx.traffic.endCanary('ended by rollback'))!;
  const target = ctx.colors.target(ended.color);
  const inflightAtSwitch = target.inflightAs('live');
  ctx.counters.rollbacks++;
  const cutOff = await target.drain(ctx.config().drainTimeoutMs, 'live');
  const drainMs = Math.round(performance.now() - t0);
  ctx.counters.drained(drainMs, cutOff);
  await appendHistory(ctx.config().root, {
    action: 'rollback',
    color: ctx.state.roles.live,
    result: 'ok',
    durationMs: drainMs,
    was: ended.color,
    message: `canary of ${percentOf(ended.share)}% to ${ended.color} ended`,
  });
  return { live: ctx.state.roles.live, was: ended.color, inflightAtSwitch, cutOff, drainMs, totalMs: drainMs, canaryEnded: true };
}

/**
 * The color that was live before the last switch, if it still holds the release it
 * served then: a deploy into it since would make a "rollback" put untested code live.
 */
async function rollbackTarget(ctx: OpsContext): Promise<Color> {
  const prev = ctx.state.previous ?? (await previousFromHistory(ctx));
  const back = prev?.color ?? ctx.state.roles.next;
  if (back === ctx.state.roles.live) throw new BgError('BG_STATE', `${back} is already live; nothing to roll back`);
  if (!prev && (await releasedCommit(ctx.config().root, back)) === null) {
    // No earlier switch and nothing deployed there: a "rollback" (even --force) would put an empty color live.
    throw new BgError('BG_STATE', `nothing to roll back to: no earlier release was live, and ${back} holds no release`);
  }
  if (prev?.commit) {
    const now = await releasedCommit(ctx.config().root, back);
    if (now !== prev.commit) {
      const was = prev.commit.slice(0, 7);
      throw new BgError(
        'BG_STATE',
        `the previous release ${was} is no longer on ${back} (it now holds ${now ? now.slice(0, 7) : 'nothing'}, deployed since); make that live with bgproxy cutover, or deploy ${was} again`,
      );
    }
  }
  return back;
}

/** After a restart of serve: the last successful switch in ROOT/history.jsonl, if it led to the current roles. */
async function previousFromHistory(ctx: OpsContext): Promise<{ color: Color; commit: string | null } | null> {
  const entries = await readHistory(ctx.config().root, 200).catch(() => []);
  for (let i = entries.length - 1; i >= 0; i--) {
    const e = entries[i]!;
    if (e.result !== 'ok' || !['cutover', 'rollback', 'auto-rollback'].includes(e.action)) continue;
    if (e.color !== ctx.state.roles.live || (e.was !== 'blue' && e.was !== 'green')) return null;
    return { color: e.was, commit: typeof e.wasCommit === 'string' ? e.wasCommit : null };
  }
  return null;
}

/**
 * The watch tripped: a normal, drained, locked rollback to `was`, unless someone acted
 * since (then what to roll back to is theirs to say). The failed release is marked so
 * it cannot go live again by accident.
 */
export async function autoRollback(ctx: OpsContext, color: Color, was: Color, reason: string): Promise<CutoverResult> {
  const operations = ctx.lock.started;
  // A fast trip can come while the cutover that started the watch still holds the lock
  // (afterCutover, history): wait for it rather than be refused.
  await ctx.lock.running;
  const back = await ctx.locked('auto-rollback', () =>
    release(
      ctx,
      'auto-rollback',
      () => {
        if (ctx.lock.started !== operations) throw new BgError('BG_STATE', 'another operation ran since the watch tripped');
        if (ctx.state.roles.live !== color) throw new BgError('BG_STATE', `${color} is no longer live; nothing to roll back`);
        return was;
      },
      {},
      undefined,
      reason,
    ),
  );
  ctx.markFailed(color, `rolled back automatically: ${reason}`);
  return back;
}

