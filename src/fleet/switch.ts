// Phase 2: every server switches, as close together as possible. Each server runs its own
// `bgproxy cutover --gate` (or rollback): health check, hooks and warm-up first, then it
// says "ready" and holds its lock until told "go". Only when every server is ready does
// "go" go to all of them in the same tick; any server failing or not ready in time, or a
// Ctrl-C, sends "abort" instead and nothing switches anywhere. A server that fails after
// "go" while others switched: those are rolled back (policy onFailure, --no-rollback).
import type { Color } from '../config.js';
import { BgError, isBgError } from '../errors.js';
import type { CutoverResult, Status } from '../types.js';
import type { FleetServer } from './config.js';
import { runRemote } from './remote.js';
import type { FleetRun } from './run.js';

export interface SwitchOutcome {
  server: Readonly<FleetServer>;
  /** The color it said it was ready to make live, and that color's commit. */
  color: Color | null;
  commit: string | null;
  /** Ready, but with another commit than the fleet's: called off. */
  mismatch?: string;
  ready: boolean;
  /** Neither ready nor failed within readyTimeoutMs: told to abort whenever it gets there. */
  late?: boolean;
  switched: boolean;
  result: CutoverResult | null;
  error: BgError | null;
  /** After a failure elsewhere: its own switch undone (afterMs: how long the switched release was live there). */
  rolledBack?: { ok: boolean; afterMs?: number; error?: string };
}

export interface SwitchReport {
  action: 'cutover' | 'rollback';
  /** "go" was sent: every server was ready. */
  went: boolean;
  /** The commit every server was ready to make live (when they agreed). */
  commit: string | null;
  outcomes: SwitchOutcome[];
  /** Between the first and the last switch (switchedAt, the servers' clocks), when two or more switched. */
  spreadMs: number | null;
  ok: boolean;
  /** Called off because not every server was ready within the fleet's readyTimeoutMs. */
  timedOut: boolean;
}

/**
 * `expect`: the commit every server must be ready to make live (a deploy's); null: the
 * same one everywhere, whichever it is. Checked on "ready", while each server holds its
 * lock: nothing can change on a server between this check and its switch.
 */
export async function switchAll(run: FleetRun, action: 'cutover' | 'rollback', opts: { rollback: boolean; expect: string | null }): Promise<SwitchReport> {
  const outcomes: SwitchOutcome[] = run.servers.map((server) => ({ server, color: null, commit: null, ready: false, switched: false, result: null, error: null }));
  let agreed = opts.expect;
  const replies = new Map<SwitchOutcome, (line: string) => void>();
  let decided: boolean | null = null;
  let decide: (go: boolean) => void = () => {};
  const decision = new Promise<boolean>((resolve) => {
    decide = (go) => {
      decided ??= go;
      resolve(go);
    };
  });
  const check = (): void => {
    if (outcomes.some((o) => o.mismatch || (!o.ready && (o.error || o.result)))) decide(false);
    else if (outcomes.every((o) => o.ready)) decide(true);
  };
  const running = outcomes.map((o) =>
    runRemote<CutoverResult>(run.ssh, o.server, [action, '--gate', '--json'], {
      interactive: true,
      onEvent: (event, data, reply) => {
        if (event === 'ready') {
          o.ready = true;
          o.color = data.color === 'blue' || data.color === 'green' ? data.color : null;
          o.commit = typeof data.commit === 'string' ? data.commit : null;
          const short = (c: string | null): string => c?.slice(0, 7) ?? 'no release';
          run.line(o.server, `ready to make ${o.color} live (${short(o.commit)})`);
          agreed ??= o.commit ?? 'none';
          if (o.commit !== agreed) {
            o.mismatch = `${o.server.name}: ${o.color} holds ${short(o.commit)}, not ${short(agreed)}`;
            run.line(o.server, `${o.color} holds ${short(o.commit)}, the others ${short(agreed)}: ${action} called off`);
          }
          // Ready after the cutover was called off: told at once, or it would wait for a "go" that never comes.
          if (decided === false) reply('abort');
          else replies.set(o, reply);
          check();
        } else if (event === 'progress' && data.phase === 'done') run.line(o.server, `${String(data.step)} ${String(data.ms)} ms`);
      },
    }).then(
      (r) => {
        o.result = r;
        o.switched = true;
      },
      (err: unknown) => {
        o.error = isBgError(err) ? err : new BgError('BG_FLEET', `${o.server.name}: ${String(err)}`);
        if (decided === false && o.ready) run.line(o.server, o.late ? 'ready too late, called off: nothing switched here' : 'called off: nothing switched here');
        else run.failure(o.server, 'failed', o.error);
      },
    ).finally(check),
  );
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = decided === null;
    decide(false);
  }, run.fleet.readyTimeoutMs);
  const off = run.onInterrupt(() => decide(false));
  const go = await decision;
  clearTimeout(timer);
  off();
  if (timedOut) for (const o of outcomes) if (!o.ready && o.error === null && o.result === null) o.late = true;
  // One synchronous loop: the "go" lines leave within microseconds of each other.
  for (const reply of replies.values()) reply(go ? 'go' : 'abort');
  if (!go) run.say(`not every server is ready: ${action} called off, nothing switched`);
  await Promise.all(running);

  if (go) await findLostSwitches(run, outcomes);
  const switched = outcomes.filter((o) => o.switched);
  const times = switched.map((o) => o.result?.switchedAt).filter((t): t is number => typeof t === 'number');
  const spreadMs = times.length >= 2 ? Math.round((Math.max(...times) - Math.min(...times)) * 10) / 10 : null;
  if (switched.length > 0) {
    const first = Math.min(...times);
    for (const o of switched) {
      const at = o.result?.switchedAt;
      run.line(o.server, `switched to ${o.color}${typeof at === 'number' ? ` at +${(at - first).toFixed(1)} ms` : ''}`);
    }
  }
  const ok = go && outcomes.every((o) => o.switched);
  const commit = go ? agreed : null;
  if (!ok && switched.length > 0) {
    if (opts.rollback) await rollBack(run, switched);
    else run.say(`left as they are (--no-rollback): ${switched.map((o) => o.server.name).join(', ')} switched, the others did not`);
  }
  return { action, went: go, commit: commit === 'none' ? null : commit, outcomes, spreadMs, ok, timedOut };
}

/**
 * A server whose answer was lost after "go" (its ssh dropped) may have switched all the
 * same: its status says. A server that cannot be asked is counted as not switched.
 */
async function findLostSwitches(run: FleetRun, outcomes: SwitchOutcome[]): Promise<void> {
  const unknown = outcomes.filter((o) => !o.switched && o.ready && o.color !== null);
  await Promise.all(
    unknown.map(async (o) => {
      const s = await runRemote<Status>(run.ssh, o.server, ['status', '--json']).catch(() => null);
      if (s && s.live === o.color) {
        o.switched = true;
        run.line(o.server, `its answer was lost, but its status shows ${o.color} live: counted as switched`);
      }
    }),
  );
}

async function rollBack(run: FleetRun, switched: SwitchOutcome[]): Promise<void> {
  run.say(`rolling back the servers that switched: ${switched.map((o) => o.server.name).join(', ')}`);
  // No gate: going back to what served a moment ago is the urgent part.
  const back = await run.each((s) => runRemote<CutoverResult>(run.ssh, s, ['rollback', '--json']), {
    servers: switched.map((o) => o.server),
    parallel: switched.length,
  });
  for (const [i, b] of back.entries()) {
    const o = switched[i]!;
    if (b.state === 'ok') {
      // How long users on this server saw the release that is being taken back.
      const was = o.result?.switchedAt;
      const now = b.value.switchedAt;
      const onNew = typeof was === 'number' && typeof now === 'number' ? Math.round(now - was) : null;
      o.rolledBack = { ok: true, ...(onNew === null ? {} : { afterMs: onNew }) };
      run.line(o.server, `rolled back: ${b.value.live} live again${onNew === null ? '' : `, ${onNew} ms after it switched to ${o.color}`}`);
    } else {
      const error = b.state === 'failed' ? b.error.message : 'not started (interrupted)';
      o.rolledBack = { ok: false, error };
      run.line(o.server, `ROLLBACK FAILED: ${error}`);
    }
  }
}

/** One server's part of a switch as plain JSON (errors as code and message). */
export function switchJson(o: SwitchOutcome): Record<string, unknown> {
  return {
    name: o.server.name,
    color: o.color,
    commit: o.commit,
    ready: o.ready,
    ...(o.late ? { late: true } : {}),
    switched: o.switched,
    switchedAt: o.result?.switchedAt ?? null,
    ...(o.rolledBack ? { rolledBack: o.rolledBack } : {}),
    error: o.error ? { code: o.error.code, message: o.error.message } : null,
  };
}

/** A few words per server for the history and the summary. */
export function describeSwitch(o: SwitchOutcome): string {
  if (o.rolledBack) return o.rolledBack.ok ? 'switched, rolled back' : 'switched, rollback failed';
  if (o.switched) return 'switched';
  if (o.error?.code === 'BG_UNREACHABLE') return 'unreachable';
  if (o.mismatch) return 'other commit';
  if (o.late) return 'not ready in time';
  if (o.error && o.ready) return 'failed at the switch';
  if (o.error) return o.ready ? 'failed' : 'not ready';
  return 'not switched';
}
