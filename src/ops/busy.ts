// What `bgproxy start`, `stop` and `restart` of one color check first. A deploy installing
// into that color owns its directory and will restart its app itself: a start by hand ran
// a half-installed checkout, a stop was undone by the deploy's own restart a moment later,
// and a restart raced the deploy's. And a color whose release is incomplete (a deploy
// failed or was interrupted before it recorded release.json) holds no app that should run.
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import type { Color } from '../config.js';
import { readRelease } from '../deploy/release.js';
import { BgError } from '../errors.js';
import type { OpsContext } from './context.js';

/** Refuses `action` on `color` while a deploy is changing that color (serve's own deploy). */
export function assertNotDeploying(ctx: OpsContext, color: Color, action: 'start' | 'stop' | 'restart'): void {
  const d = ctx.state.deploying;
  if (!d || d.color !== color) return;
  const what = d.commit ? `the deploy of ${d.commit.slice(0, 7)}` : 'a deploy';
  const secs = Math.round((Date.now() - d.startedAt) / 1000);
  throw new BgError(
    'BG_LOCKED',
    `${what} into ${color} is running (step ${d.step}, ${secs}s so far): ${action} refused, the deploy restarts ${color} itself; wait for it (bgproxy status) or stop it (bgproxy deploy --cancel)`,
  );
}

/**
 * Refuses to start `color` when it holds nothing complete to run: no release at all
 * (nothing deployed, its app directory empty), or a deploy that changed it and never
 * recorded its release (failed or interrupted mid-install: marked failed, no release.json).
 */
export async function assertRunnable(ctx: OpsContext, color: Color, action: 'start' | 'restart'): Promise<void> {
  const c = ctx.config();
  const dir = path.join(c.root, color, 'repo', c.app.dir);
  const release = await readRelease(c.root, color).catch(() => null);
  if (release !== null) return;
  const failed = ctx.colors.failure(color);
  if (failed !== null) {
    throw new BgError('BG_STATE', `${color}'s release is incomplete (${failed}): ${action} refused; deploy again (bgproxy deploy)`);
  }
  const entries = await readdir(dir).catch(() => []);
  if (entries.length === 0) {
    // Nothing deployed and nothing placed there: starting the app would only fail in an empty directory.
    throw new BgError('BG_STATE', `${color} has no release (${dir} is empty): deploy one first (bgproxy deploy)`);
  }
}
