// ROOT/traffic.json: the traffic controls that outlive a restart of serve (maintenance and
// the canary; a pause deliberately does not). Written whole: temp file, fsync, rename.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Color } from '../config.js';
import { writeFileAtomic } from '../layout/atomic.js';

export interface MaintenanceState {
  retryAfterS: number;
  since: string;
}

export interface CanaryState {
  /** The color getting the share (next when it started). */
  color: Color;
  /** Share of live traffic, in hundredths of a percent (1000 = 10%). */
  share: number;
  /** Names this canary in its cookie: a client's cookie from an older canary is not reused. */
  id: string;
  since: string;
}

export interface TrafficState {
  maintenance: MaintenanceState | null;
  canary: CanaryState | null;
}

export const STATE_FILE = 'traffic.json';

export function readTrafficState(root: string): { state: TrafficState; problem: string | null } {
  const empty: TrafficState = { maintenance: null, canary: null };
  let text: string;
  try {
    text = readFileSync(path.join(root, STATE_FILE), 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { state: empty, problem: code === 'ENOENT' ? null : `cannot read ${STATE_FILE}: ${code}` };
  }
  try {
    const raw = JSON.parse(text) as Record<string, unknown>;
    return { state: { maintenance: maintenanceOf(raw.maintenance), canary: canaryOf(raw.canary) }, problem: null };
  } catch (err) {
    return { state: empty, problem: `${STATE_FILE} is not valid JSON (${(err as Error).message}); ignored` };
  }
}

function maintenanceOf(v: unknown): MaintenanceState | null {
  if (typeof v !== 'object' || v === null) return null;
  const m = v as Record<string, unknown>;
  const retryAfterS = Number.isInteger(m.retryAfterS) ? (m.retryAfterS as number) : 120;
  return { retryAfterS, since: typeof m.since === 'string' ? m.since : new Date().toISOString() };
}

function canaryOf(v: unknown): CanaryState | null {
  if (typeof v !== 'object' || v === null) return null;
  const c = v as Record<string, unknown>;
  if ((c.color !== 'blue' && c.color !== 'green') || !Number.isInteger(c.share) || typeof c.id !== 'string') return null;
  const share = c.share as number;
  if (share < 1 || share >= 10_000 || !/^[a-z0-9]{1,16}$/.test(c.id)) return null;
  return { color: c.color, share, id: c.id, since: typeof c.since === 'string' ? c.since : new Date().toISOString() };
}

export function writeTrafficState(root: string, state: TrafficState): void {
  writeFileAtomic(path.join(root, STATE_FILE), `${JSON.stringify(state, null, 2)}\n`);
}
