// Stopping: `bgproxy stop COLOR` (one color's app, drained; Colors.stop), and what stops
// when serve stops (Bgproxy.close, after the listeners closed): the watch, held requests,
// certificate renewals, then both colors drained and their apps stopped.
import type { Color } from '../config.js';
import { assertNotDeploying } from './busy.js';
import type { OpsContext } from './context.js';

/** Drains `color` and stops its app; the live color only with force. */
export async function stopColor(ctx: OpsContext, color: Color, opts: { force?: boolean } = {}): Promise<{ cutOff: number; killed: boolean; drainMs: number }> {
  assertNotDeploying(ctx, color, 'stop');
  return ctx.colors.stop(color, { live: ctx.state.roles.live === color, force: opts.force === true });
}

/** Waits (bounded) for in-flight requests on both colors, then stops the apps drained. */
export async function stop(ctx: OpsContext, timeoutMs: number): Promise<void> {
  ctx.watch.stop('shutting down');
  ctx.traffic.close();
  ctx.tls?.close();
  // The proxy has stopped accepting: let what runs finish, then stop the apps drained.
  await ctx.colors.close(timeoutMs);
}
