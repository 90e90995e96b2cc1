// `bgproxy fleet deploy|cutover|rollback`, read top to bottom:
// phase 1: deploy into next everywhere (at most `parallel` at once, progress by server);
// phase 2, once every server is healthy on next with the same commit: switch everywhere
// (switch.ts). A failure in phase 1, or before every server is ready, leaves every live
// color untouched.
import type { DeployProgress, DeployResult } from '../deploy/deploy.js';
import { BgError } from '../errors.js';
import { appendFleetHistory, type FleetHistoryEntry, lastPushed } from './history.js';
import { runRemote } from './remote.js';
import { describeFailure, type FleetRun } from './run.js';
import { describeSwitch, type SwitchReport, switchAll, switchJson } from './switch.js';

export interface FleetReport {
  action: FleetHistoryEntry['action'];
  result: FleetHistoryEntry['result'];
  commit: string | null;
  /** Where it ended: "deploy", "check" (the servers resolved COMMIT differently) or "switch". */
  phase: string;
  servers: Record<string, string>;
  switch: SwitchReport | null;
  message: string;
  durationMs: number;
}

/** What --json prints: the report with each server's switch as plain JSON. */
export function reportJson(r: FleetReport): Record<string, unknown> {
  const sw = r.switch;
  return { ...r, switch: sw ? { went: sw.went, ok: sw.ok, timedOut: sw.timedOut, spreadMs: sw.spreadMs, commit: sw.commit, servers: sw.outcomes.map(switchJson) } : null };
}

export interface FleetDeployOptions {
  commit?: string;
  cutover: boolean;
  /** Roll back the servers that switched when another one failed (default: the fleet's onFailure). */
  rollback: boolean;
  force: boolean;
}

function deployPrinter(run: FleetRun, server: Parameters<FleetRun['line']>[0]): (event: string, data: Record<string, unknown>) => void {
  return (event, data) => {
    if (event !== 'progress') return;
    const p = data as unknown as DeployProgress;
    if (p.phase === 'done') run.line(server, `${p.step.padEnd(10)} ${p.ms} ms`);
    else if (p.phase === 'line') run.line(server, `  ${p.line}`);
  };
}

export async function fleetDeploy(run: FleetRun, opts: FleetDeployOptions): Promise<FleetReport> {
  const t0 = performance.now();
  const commit = opts.commit ?? (await lastPushed(run.fleet.file));
  if (!commit) throw new BgError('BG_USAGE', 'no COMMIT given and nothing pushed yet (bgproxy fleet push first, or name a commit)');
  const report = (r: Omit<FleetReport, 'action' | 'durationMs'>): Promise<FleetReport> =>
    finish(run, { ...r, action: 'deploy', durationMs: Math.round(performance.now() - t0) });

  // Phase 1: next everywhere. Live is not touched by a deploy, whatever happens here.
  run.say(`phase 1: deploying ${commit.slice(0, 7)} into next on ${run.servers.length} servers (${run.fleet.parallel} at a time)`);
  // The commit last pushed is in each server's repo.git, whatever its app.repo says.
  const from = (root: string): string[] => (opts.commit ? [] : ['--from', `${root.replace(/\/+$/, '')}/repo.git`]);
  const deploys = await run.each((s) =>
    runRemote<DeployResult>(run.ssh, s, ['deploy', commit, ...from(s.root), '--json', ...(opts.force ? ['--force'] : [])], {
      onEvent: deployPrinter(run, s),
    }),
  );
  for (const d of deploys) {
    if (d.state === 'ok') run.line(d.server, d.value.message);
    else if (d.state === 'failed') run.failure(d.server, 'deploy FAILED', d.error);
  }
  const servers = Object.fromEntries(deploys.map((d) => [d.server.name, d.state === 'ok' ? `deployed into ${d.value.color}` : d.state === 'failed' ? `deploy ${describeFailure(d.error)}` : 'not started']));
  const failed = deploys.filter((d) => d.state !== 'ok');
  if (failed.length > 0) {
    const names = failed.map((d) => d.server.name).join(', ');
    return report({
      result: run.interrupted ? 'interrupted' : 'failed',
      commit,
      phase: 'deploy',
      servers,
      switch: null,
      message: `${run.interrupted ? 'interrupted' : `deploy failed on ${names}`}: nothing switched, every live color untouched`,
    });
  }
  const commits = new Set(deploys.map((d) => (d.state === 'ok' ? d.value.commit : '')));
  if (commits.size > 1) {
    return report({ result: 'failed', commit, phase: 'check', servers, switch: null, message: `${commit} resolved to different commits on the servers (${[...commits].map((c) => c.slice(0, 7)).join(', ')}): nothing switched; name a full commit` });
  }
  const sha = [...commits][0]!;
  if (!opts.cutover) {
    return report({ result: 'ok', commit: sha, phase: 'deploy', servers, switch: null, message: `${sha.slice(0, 7)} is next on every server - go live: bgproxy fleet cutover` });
  }
  return phase2(run, 'cutover', sha, opts.rollback, servers, report);
}

/** `fleet cutover` / `fleet rollback` on their own: phase 2 alone. */
export async function fleetSwitch(run: FleetRun, action: 'cutover' | 'rollback', rollback: boolean): Promise<FleetReport> {
  const t0 = performance.now();
  const report = (r: Omit<FleetReport, 'action' | 'durationMs'>): Promise<FleetReport> =>
    finish(run, { ...r, action, durationMs: Math.round(performance.now() - t0) });
  return phase2(run, action, null, rollback, {}, report);
}

/**
 * The switch everywhere. What phase 2 needs checked (every server reachable, healthy on the
 * color to go live, all with the same commit: `sha` when a deploy just ran) is checked by
 * each server's gated cutover and its "ready" line, while it holds its own lock.
 */
async function phase2(
  run: FleetRun,
  action: 'cutover' | 'rollback',
  sha: string | null,
  rollback: boolean,
  servers: Record<string, string>,
  report: (r: Omit<FleetReport, 'action' | 'durationMs'>) => Promise<FleetReport>,
): Promise<FleetReport> {
  if (run.interrupted) {
    return report({ result: 'interrupted', commit: sha, phase: 'switch', servers, switch: null, message: 'interrupted: nothing switched, every live color untouched' });
  }
  run.say(`phase 2: ${action} on ${run.servers.length} servers at once`);
  const sw = await switchAll(run, action, { rollback, expect: sha });
  const commit = sw.commit ?? sha;
  const names = (pred: (o: SwitchReport['outcomes'][number]) => boolean): string =>
    sw.outcomes.filter(pred).map((o) => o.server.name).join(', ');
  const spread = sw.spreadMs === null ? '' : `; the switches were ${sw.spreadMs} ms apart`;
  let message: string;
  if (sw.ok) message = `${action} done on every server${commit ? `: ${commit.slice(0, 7)} is live` : ''}${spread}`;
  else if (!sw.went) {
    const ready = sw.outcomes.filter((o) => o.ready);
    const why = sw.outcomes.some((o) => o.mismatch)
      ? [`ready with different commits: ${ready.map((o) => `${o.server.name} ${o.commit?.slice(0, 7) ?? 'none'}`).join(', ')}${sha ? `; expected ${sha.slice(0, 7)}` : ''}`]
      : sw.outcomes
          .filter((o) => o.late || !o.ready)
          .map((o) => `${o.server.name} not ready${o.late ? ` within readyTimeoutMs (${run.fleet.readyTimeoutMs} ms)` : ''}`);
    message = `${action} called off before any switch (${why.join('; ') || 'interrupted'}): every live color untouched`;
  } else {
    const rolled = names((o) => o.rolledBack?.ok === true);
    const stuck = names((o) => o.rolledBack?.ok === false || (o.switched && !o.rolledBack));
    message = `${action} failed on ${names((o) => !o.switched)}${rolled ? `; rolled back ${rolled}` : ''}${stuck ? `; STILL SWITCHED: ${stuck}` : ''}`;
  }
  return report({
    result: sw.ok ? 'ok' : run.interrupted ? 'interrupted' : 'failed',
    commit,
    phase: 'switch',
    servers: { ...servers, ...Object.fromEntries(sw.outcomes.map((o) => [o.server.name, describeSwitch(o)])) },
    switch: sw,
    message,
  });
}

async function finish(run: FleetRun, r: FleetReport): Promise<FleetReport> {
  await appendFleetHistory(run.fleet.file, {
    action: r.action,
    result: r.result,
    commit: r.commit,
    durationMs: r.durationMs,
    servers: r.servers,
    ...(r.switch?.spreadMs != null ? { spreadMs: r.switch.spreadMs } : {}),
    message: r.message,
  });
  return r;
}
