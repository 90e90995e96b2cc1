// Warm-up before a cutover (app.warmup): the listed paths requested on the next color
// directly on its port, with the public Host header, so its caches, JIT and connection
// pools are warm before the first real visitor arrives. Every answer must be 2xx.
import http from 'node:http';
import { BgError } from '../errors.js';
import { plural } from '../words.js';

export interface WarmupOptions {
  port: number;
  /** The Host header (the first live host), as the app will see it after the switch. */
  host: string;
  paths: readonly string[];
  concurrency: number;
  /** Per request. */
  timeoutMs: number;
}

export interface WarmupAnswer {
  path: string;
  /** HTTP status, or null when no answer came (refused, reset, timed out). */
  status: number | null;
  ms: number;
  error?: string;
}

export interface WarmupResult {
  ok: boolean;
  requests: number;
  ms: number;
  slowest: { path: string; ms: number } | null;
  /** The answers that were not 2xx. */
  failures: WarmupAnswer[];
}

/** Requests every path once (at most `concurrency` at a time); never throws. */
export async function warmUp(opts: WarmupOptions, onAnswer?: (a: WarmupAnswer) => void): Promise<WarmupResult> {
  const t0 = performance.now();
  const agent = new http.Agent({ keepAlive: true, maxSockets: opts.concurrency });
  const answers: WarmupAnswer[] = [];
  let nextIndex = 0;
  const worker = async (): Promise<void> => {
    for (let i = nextIndex++; i < opts.paths.length; i = nextIndex++) {
      const a = await requestOnce(agent, opts, opts.paths[i] as string);
      answers.push(a);
      onAnswer?.(a);
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(opts.concurrency, opts.paths.length) }, worker));
  } finally {
    agent.destroy();
  }
  const failures = answers.filter((a) => a.status === null || a.status < 200 || a.status >= 300);
  const slowest = answers.reduce<WarmupAnswer | null>((s, a) => (s === null || a.ms > s.ms ? a : s), null);
  return {
    ok: failures.length === 0,
    requests: answers.length,
    ms: Math.round(performance.now() - t0),
    slowest: slowest ? { path: slowest.path, ms: slowest.ms } : null,
    failures,
  };
}

function requestOnce(agent: http.Agent, opts: WarmupOptions, path: string): Promise<WarmupAnswer> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    let settled = false;
    const done = (status: number | null, error?: string): void => {
      if (settled) return;
      settled = true;
      resolve({ path, status, ms: Math.round(performance.now() - t0), ...(error ? { error } : {}) });
    };
    const req = http.request(
      { host: '127.0.0.1', port: opts.port, path, agent, headers: { host: opts.host, 'user-agent': 'bgproxy-warmup' } },
      (res) => {
        // Read the whole body: rendering it is part of what warms the app.
        res.resume();
        res.once('end', () => done(res.statusCode ?? null));
        res.once('error', (e) => done(null, e.message));
      },
    );
    req.setTimeout(opts.timeoutMs, () => req.destroy(new Error(`timed out after ${opts.timeoutMs} ms`)));
    req.once('error', (e: NodeJS.ErrnoException) => done(null, e.code === 'ECONNREFUSED' ? 'connection refused' : e.message));
    req.end();
  });
}

/** One line for people: "warm-up: 12 requests in 340 ms (slowest /search 120 ms)". */
export function formatWarmup(r: WarmupResult): string {
  const slow = r.slowest ? ` (slowest ${r.slowest.path} ${r.slowest.ms} ms)` : '';
  if (r.ok) return `warm-up: ${plural(r.requests, 'request')} in ${r.ms} ms${slow}`;
  const shown = r.failures
    .slice(0, 3)
    .map((f) => `${f.path} ${f.status ?? f.error}`)
    .join(', ');
  const more = r.failures.length > 3 ? ` and ${r.failures.length - 3} more` : '';
  return `warm-up failed: ${r.failures.length} of ${r.requests} requests not 2xx (${shown}${more})`;
}

/** The error a failed warm-up aborts the cutover with. */
export function warmupError(r: WarmupResult, what: string): BgError {
  const detail = r.failures.map((f) => `GET ${f.path}: ${f.status === null ? f.error : `HTTP ${f.status}`} (${f.ms} ms)`).join('\n');
  return new BgError('BG_UNHEALTHY', `${what}: ${formatWarmup(r)}; live is unchanged`, { detail });
}
