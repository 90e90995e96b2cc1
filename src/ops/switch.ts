// The switch of live itself, the middle of every cutover and rollback (ops/cutover.ts):
// proxy mode persists the links, changes the roles in memory in one assignment and drains
// what the old live color was serving; nginx mode has nginx switch (links, test, reload, verify).
import type { Color } from '../config.js';
import { writeRoles } from '../layout/roles.js';
import { nginxCutover } from '../nginx/cutover.js';
import type { CutoverOptions, CutoverResult } from '../types.js';
import { plural } from '../words.js';
import type { OpsContext } from './context.js';

/** Persist -> switch memory in one assignment -> drain what the old live color was serving. */
export async function switchTo(ctx: OpsContext, color: Color, opts: CutoverOptions, rollback: boolean): Promise<CutoverResult> {
  const started = performance.now();
  const was = ctx.state.roles.live;
  if (ctx.config().mode === 'nginx') return switchNginx(ctx, color, was, started, opts, rollback);
  // Persist first: if the links cannot be written, memory is untouched and nothing moved.
  const roles = Object.freeze(writeRoles(ctx.config().root, color));
  const oldLive = ctx.colors.target(was);
  ctx.state.roles = roles;
  ctx.counters.switched(rollback);
  const switchedAt = performance.timeOrigin + performance.now();
  const inflightAtSwitch = oldLive.inflightAs('live');
  ctx.log.info({ event: 'cutover', live: color, was, inflight: inflightAtSwitch }, `live: ${color} (was ${was})`);
  const early: CutoverResult = { live: color, was, inflightAtSwitch, cutOff: 0, drainMs: 0, totalMs: 0, switchedAt };
  ctx.emit('cutover', early);
  const drainStart = performance.now();
  const cutOff = await oldLive.drain(ctx.config().drainTimeoutMs, 'live');
  const result: CutoverResult = {
    ...early,
    cutOff,
    drainMs: Math.round(performance.now() - drainStart),
    totalMs: Math.round(performance.now() - started),
  };
  ctx.counters.drained(result.drainMs, cutOff);
  ctx.log.info({ event: 'drained', color: was, ...result }, `drained ${was}: ${plural(inflightAtSwitch, 'request')} in ${result.drainMs} ms`);
  ctx.emit('drained', result);
  return result;
}

/** nginx mode: nginx routes, so the switch is links + nginx -t + reload + verify (with restore). */
async function switchNginx(ctx: OpsContext, color: Color, was: Color, started: number, opts: CutoverOptions, rollback: boolean): Promise<CutoverResult> {
  const r = await nginxCutover(ctx.config(), { force: opts.force === true, logger: ctx.log });
  ctx.state.roles = Object.freeze({ live: r.live, next: r.was });
  ctx.counters.switched(rollback);
  ctx.counters.drained(r.oldWorkersMs ?? 0, r.oldWorkersLeft);
  // nginx switched during its reload; this is when that reload was verified.
  const switchedAt = performance.timeOrigin + performance.now();
  const result: CutoverResult = {
    live: color,
    was,
    inflightAtSwitch: 0,
    cutOff: r.oldWorkersLeft,
    drainMs: r.oldWorkersMs ?? 0,
    totalMs: Math.round(performance.now() - started),
    switchedAt,
    nginx: { switchedMs: r.switchedMs, testMs: r.testMs, reloadMs: r.reloadMs, verifyMs: r.verifyMs, oldWorkersMs: r.oldWorkersMs },
  };
  ctx.emit('cutover', result);
  ctx.emit('drained', result);
  return result;
}

