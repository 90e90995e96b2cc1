// `bgproxy status`: the roles, both colors (app, release, health), the last release, the
// watch, the traffic controls, certificates, and the deploy running now, if any.
import { COLORS, type Color } from '../config.js';
import type { ColorStatus, Status } from '../types.js';
import { VERSION } from '../version.js';
import type { OpsContext } from './context.js';

export async function status(ctx: OpsContext): Promise<Status> {
  const colors = {} as Record<Color, ColorStatus>;
  await Promise.all(
    COLORS.map(async (c) => {
      colors[c] = await ctx.colors.status(c);
    }),
  );
  const { roles, lastRelease, deploying } = ctx.state;
  const config = ctx.config();
  return {
    version: VERSION,
    live: roles.live,
    next: roles.next,
    mode: config.mode,
    listen: ctx.listenAddress(),
    root: config.root,
    pid: process.pid,
    colors,
    lastRelease,
    watch: ctx.watch.report(),
    traffic: ctx.traffic.status(),
    ...(ctx.tls ? { tls: ctx.tls.status() } : {}),
    deploy: deploying && {
      color: deploying.color,
      commit: deploying.commit,
      step: deploying.step,
      startedAt: new Date(deploying.startedAt).toISOString(),
      elapsedMs: Date.now() - deploying.startedAt,
    },
  };
}
