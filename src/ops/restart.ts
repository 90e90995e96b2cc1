// `bgproxy restart COLOR` (and a deploy's restart of next on its new release): drained,
// through Colors.restart, but never of a color that holds nothing to run.
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import type { Color } from '../config.js';
import { releasedCommit } from '../deploy/release.js';
import { BgError } from '../errors.js';
import type { OpsContext } from './context.js';

/** Drains `color`, stops its app and starts it again; requests meanwhile are held. */
export async function restartColor(ctx: OpsContext, color: Color): Promise<{ cutOff: number; drainMs: number }> {
  const dir = path.join(ctx.config().root, color, 'repo', ctx.config().app.dir);
  const entries = await readdir(dir).catch(() => []);
  if (entries.length === 0 && (await releasedCommit(ctx.config().root, color)) === null) {
    // Nothing deployed and nothing placed there: starting the app would only fail in an empty directory.
    throw new BgError('BG_STATE', `${color} has no release (${dir} is empty): deploy one first (bgproxy deploy)`);
  }
  return ctx.colors.restart(color, ctx.roleOf(color));
}

