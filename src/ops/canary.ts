// `bgproxy canary PERCENT`: a share of the live host's traffic to next, sticky per client
// (the split itself lives in traffic/canary.ts). `cutover` completes it, `rollback` ends it
// (ops/cutover.ts, ops/rollback.ts).
import { BgError } from '../errors.js';
import type { CanaryStatusResult, CutoverOptions } from '../types.js';
import type { OpsContext } from './context.js';

/**
 * Canary cutover: `percent` (0.01..99.99) of live-host traffic goes to next, sticky per
 * client, after the same health check as a cutover; called again, changes the share.
 * `cutover` completes it, `rollback` ends it. With watchMs (or watch.watchMs), a bad 5xx
 * rate on next ends it by itself.
 */
export function canary(ctx: OpsContext, percent: number, opts: CutoverOptions = {}): Promise<CanaryStatusResult> {
  return ctx.locked('canary', async () => {
    const share = Math.round(percent * 100);
    if (!(share >= 1 && share <= 9999)) throw new BgError('BG_USAGE', `a canary share is above 0% and below 100%, got ${percent}%`);
    if (ctx.config().mode === 'nginx') throw new BgError('BG_USAGE', 'a canary needs proxy mode: in nginx mode nginx routes the requests, not bgproxy');
    const color = ctx.state.roles.next;
    if (!opts.force) await ctx.assertHealthy(color);
    const watchMs = opts.watchMs ?? ctx.config().watch.watchMs;
    return { canary: await ctx.traffic.startCanary(share, watchMs) };
  });
}

