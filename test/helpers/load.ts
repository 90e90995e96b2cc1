// Bounded concurrent load for zero-downtime tests: N clients, each sending requests one
// after another over its own keep-alive connection until stop() or maxMs.
import http from 'node:http';
import https from 'node:https';
import type { Test } from 'tap';

export interface LoadStats {
  requests: number;
  errors: string[];
  non2xx: number[];
  /** Response bodies (trimmed) in the order they arrived. */
  bodies: string[];
  counts: Map<string, number>;
}

export interface LoadOptions {
  port: number;
  host: string;
  clients: number;
  maxMs: number;
  path?: string;
  keepAlive?: boolean;
  /** Called per response with its timing (performance.now() at send and at the end of the body). */
  onResponse?: (r: { status: number; headers: http.IncomingHttpHeaders; body: string; startedAt: number; endedAt: number }) => void;
  /** Each client waits this long between requests (default 0: back to back). */
  pauseMs?: number;
  /** HTTPS: trust this CA, send SNI = host. */
  tls?: { ca: Buffer };
}

export function startLoad(opts: LoadOptions): {
  stats: LoadStats;
  stop(): Promise<LoadStats>;
} {
  const stats: LoadStats = { requests: 0, errors: [], non2xx: [], bodies: [], counts: new Map() };
  let running = true;
  const deadline = Date.now() + opts.maxMs;
  const agents: http.Agent[] = [];
  const client = opts.tls ? https : http;
  const tlsOpts = opts.tls ? { ca: opts.tls.ca, servername: opts.host } : {};
  const one = (agent: http.Agent | false): Promise<void> =>
    new Promise((resolve) => {
      const startedAt = performance.now();
      const req = client.request(
        { host: '127.0.0.1', port: opts.port, path: opts.path ?? '/', agent, headers: { host: opts.host }, ...tlsOpts },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (body += c));
          res.on('end', () => {
            stats.requests++;
            const status = res.statusCode ?? 0;
            if (status < 200 || status >= 300) stats.non2xx.push(status);
            const b = body.trim();
            stats.bodies.push(b);
            stats.counts.set(b, (stats.counts.get(b) ?? 0) + 1);
            opts.onResponse?.({ status, headers: res.headers, body: b, startedAt, endedAt: performance.now() });
            resolve();
          });
          res.on('error', (e) => {
            stats.errors.push(e.message);
            resolve();
          });
        },
      );
      req.setTimeout(10_000, () => req.destroy(new Error('client timeout')));
      req.on('error', (e: NodeJS.ErrnoException) => {
        stats.errors.push(e.code ?? e.message);
        resolve();
      });
      req.end();
    });
  const loops = Array.from({ length: opts.clients }, async () => {
    const agent = opts.keepAlive === false ? false : new client.Agent({ keepAlive: true, maxSockets: 1, ...tlsOpts });
    if (agent) agents.push(agent);
    while (running && Date.now() < deadline) {
      await one(agent);
      if (opts.pauseMs) await new Promise((r) => setTimeout(r, opts.pauseMs));
    }
  });
  const all = Promise.all(loops);
  return {
    stats,
    async stop() {
      running = false;
      await all;
      for (const a of agents) a.destroy();
      return stats;
    },
  };
}

/**
 * Ten cutovers through `bg` while `load` runs, each after the traffic has reached the
 * color the previous one made live (or 5 s passed); asserts that each drained fully and
 * returns how many of the ten switches the load saw.
 */
export async function tenCutovers(
  t: Test,
  bg: { cutover(): Promise<{ live: string; cutOff: number }> },
  load: { stats: LoadStats },
): Promise<number> {
  const wait = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
  let switchesSeen = 0;
  for (let i = 0; i < 10; i++) {
    const r = await bg.cutover();
    t.equal(r.cutOff, 0, `cutover ${i + 1} drained fully`);
    const seenAfter = load.stats.bodies.length;
    const until = Date.now() + 5000;
    while (!load.stats.bodies.slice(seenAfter).includes(r.live) && Date.now() < until) await wait(10);
    if (load.stats.bodies.slice(seenAfter).includes(r.live)) switchesSeen++;
    await wait(150);
  }
  return switchesSeen;
}
