// The steps of a cutover around the switch itself: progress reporting, the beforeCutover
// hook and warm-up against the color about to go live, and the history record.
import type { Color, Config } from '../config.js';
import { appendHistory } from '../deploy/history.js';
import { readRelease } from '../deploy/release.js';
import type { Logger } from '../log.js';
import type { CutoverProgress, CutoverResult } from '../types.js';
import { hookError, runHook } from './hooks.js';
import { historyFields, type ReleaseReport, summarizeReport } from './report.js';
import { warmUp, warmupError } from './warmup.js';

/** Reports the steps of one cutover: `step` times a step, `line` streams a command's output. */
export interface Progress {
  step<T>(name: string, fn: () => Promise<T>): Promise<T>;
  line(step: string): (line: string) => void;
}

function hasWork(config: Config, step: string): boolean {
  if (step === 'warmup') return config.app.warmup.paths.length > 0;
  if (step === 'beforeCutover' || step === 'afterCutover') return config.app.hooks[step].length > 0;
  return false;
}

/** Progress for `send`; only steps with work to do are announced (the switch is the result line). */
export function releaseProgress(config: Config, send: (p: CutoverProgress) => void): Progress {
  return {
    line: (step) => (line) => send({ step, phase: 'line', line }),
    step: async (step, fn) => {
      const t0 = performance.now();
      const announce = hasWork(config, step);
      if (announce) send({ step, phase: 'start' });
      const out = await fn();
      if (announce) send({ step, phase: 'done', ms: Math.round(performance.now() - t0) });
      return out;
    },
  };
}

/** beforeCutover hook, then warm-up, against `color` while it is still next; either failing aborts. */
export async function beforeSwitch(config: Config, color: Color, commit: string | null, report: ReleaseReport, progress: Progress): Promise<void> {
  const what = `cutover to ${color}`;
  report.step = 'beforeCutover';
  const hook = await progress.step('beforeCutover', () =>
    runHook(config, 'beforeCutover', color, { commit, role: 'next', action: 'cutover', onLine: progress.line('beforeCutover') }),
  );
  if (hook) report.hooks.beforeCutover = hook;
  if (hook && !hook.ok) throw hookError(hook, what);
  const w = config.app.warmup;
  if (w.paths.length > 0) {
    report.step = 'warmup';
    const host = config.hosts.live[0] ?? `127.0.0.1:${config.colors[color].port}`;
    const opts = { port: config.colors[color].port, host, paths: w.paths, concurrency: w.concurrency, timeoutMs: w.timeoutMs };
    const warm = await progress.step('warmup', () =>
      warmUp(opts, (a) => {
        if (a.status === null || a.status < 200 || a.status >= 300) progress.line('warmup')(`GET ${a.path}: ${a.status ?? a.error}`);
      }),
    );
    report.warmup = warm;
    if (!warm.ok) throw warmupError(warm, what);
  }
  delete report.step;
}

/** Appends the outcome to ROOT/history.jsonl and keeps it for status. */
export async function recorded(
root: string,
log: Logger,
report: ReleaseReport,
nextColor: () => Color,
fn: () => Promise<CutoverResult>,
): Promise<CutoverResult> {
  const t0 = performance.now();
  try {
    const r = await fn();
    report.result = 'ok';
    report.durationMs = r.totalMs;
    const release = await readRelease(root, r.live).catch(() => null);
    const summary = summarizeReport(report);
    await appendHistory(root, {
      action: report.action,
      color: r.live,
      commit: release?.commit ?? null,
      result: 'ok',
      durationMs: r.totalMs,
      was: r.was,
      wasCommit: r.wasCommit ?? null,
      drained: r.inflightAtSwitch,
      cutOff: r.cutOff,
      ...(summary ? { message: summary } : {}),
      ...historyFields(report),
      ...(r.watch ? { watchMs: r.watch.watchMs } : {}),
    }).catch((err: Error) => log.warn({ err: err.message }, 'cannot write history'));
    return r;
  } catch (err) {
    report.result = 'failed';
    report.durationMs = Math.round(performance.now() - t0);
    report.message = (err as Error).message;
    report.step ??= 'validate';
    log.error({ event: `${report.action}-failed`, color: report.color, step: report.step }, report.message);
    await appendHistory(root, {
      action: report.action,
      color: report.color ?? nextColor(),
      result: 'failed',
      durationMs: report.durationMs,
      message: report.message,
      ...historyFields(report),
    }).catch(() => undefined);
    throw err;
  }
}
