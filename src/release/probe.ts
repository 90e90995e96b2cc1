// What the post-cutover watch looks at for one color: the proxy's counters of that color,
// and its health as the supervisor sees it (or, for apps started another way, our own
// probes of its health path).
import type { Color, Config } from '../config.js';
import type { Target } from '../proxy/target.js';
import { checkHealth } from '../supervisor/health-check.js';
import type { Supervisor } from '../supervisor/supervisor.js';
import type { WatchProbe } from './watch.js';

export function colorProbe(config: Config, color: Color, target: Target, supervisor: Supervisor | null): WatchProbe {
  const counts = (): { served: number; errors5xx: number } => ({ served: target.served, errors5xx: target.errors5xx });
  if (supervisor) {
    // The supervisor already health-checks every intervalMs and turns a running app
    // 'unhealthy' after unhealthyAfter failures; reading its state is enough, and cheap.
    return {
      counts,
      healthEveryMs: 100,
      unhealthyAfter: 1,
      health: async () => {
        const s = supervisor.snapshot(color);
        if (s?.state === 'running') return null;
        return `${s?.state ?? 'stopped'}${s?.reason ? `: ${s.reason}` : ''}`;
      },
    };
  }
  const h = config.app.health;
  return {
    counts,
    healthEveryMs: h.intervalMs,
    unhealthyAfter: h.unhealthyAfter,
    health: async () => {
      const r = await checkHealth(config.colors[color].port, h.path, h.timeoutMs);
      return r.ok ? null : `GET ${h.path}: ${r.reason ?? 'failed'}`;
    },
  };
}
