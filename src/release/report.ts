// What one cutover, rollback or auto-rollback did besides the switch: its hooks and its
// warm-up. Kept by Bgproxy for `status` and written, in short, to history.
import type { Color } from '../config.js';
import type { HookResult } from './hooks.js';
import { formatWarmup, type WarmupResult } from './warmup.js';

export type ReleaseAction = 'cutover' | 'rollback' | 'auto-rollback';

export interface ReleaseReport {
  action: ReleaseAction;
  /** The color made live, or that was to be made live. */
  color: Color | null;
  result: 'running' | 'ok' | 'failed';
  /** When it started (ISO). */
  time: string;
  durationMs?: number;
  /** Why it failed. */
  message?: string;
  /** The step it failed at: validate, beforeCutover, warmup or switch. */
  step?: string;
  hooks: { beforeCutover?: HookResult; afterCutover?: HookResult };
  warmup?: WarmupResult;
  /** An auto-rollback: why the watch tripped. */
  reason?: string;
}

export function newReport(action: ReleaseAction): ReleaseReport {
  return { action, color: null, result: 'running', time: new Date().toISOString(), hooks: {} };
}

function formatHook(h: HookResult): string {
  return h.ok ? `${h.hook} ok (${h.ms} ms)` : `${h.error}`;
}

/** One line: "beforeCutover ok (120 ms); warm-up: 3 requests in 40 ms; afterCutover ok (5 ms)". */
export function summarizeReport(r: ReleaseReport): string {
  const parts: string[] = [];
  if (r.reason) parts.push(`watch tripped: ${r.reason}`);
  if (r.hooks.beforeCutover) parts.push(formatHook(r.hooks.beforeCutover));
  if (r.warmup) parts.push(formatWarmup(r.warmup));
  if (r.hooks.afterCutover) parts.push(formatHook(r.hooks.afterCutover));
  return parts.join('; ');
}

/** The compact form written to history.jsonl (no output tails: the deploy log has them). */
export function historyFields(r: ReleaseReport): Record<string, unknown> {
  const hook = (h: HookResult | undefined) => (h ? { ok: h.ok, ms: h.ms, ...(h.error ? { error: h.error } : {}) } : undefined);
  const out: Record<string, unknown> = {};
  const before = hook(r.hooks.beforeCutover);
  const after = hook(r.hooks.afterCutover);
  if (before || after) out.hooks = { ...(before ? { beforeCutover: before } : {}), ...(after ? { afterCutover: after } : {}) };
  if (r.warmup) out.warmup = { ok: r.warmup.ok, requests: r.warmup.requests, ms: r.warmup.ms, failures: r.warmup.failures.length };
  if (r.reason) out.reason = r.reason;
  if (r.step) out.step = r.step;
  return out;
}
