// One health probe: GET path on 127.0.0.1:port, healthy on 2xx/3xx within timeoutMs.
import http from 'node:http';

export interface HealthResult {
  ok: boolean;
  status?: number;
  /** Why it failed, for messages: "connection refused", "timed out after 2000 ms", "HTTP 500". */
  reason?: string;
  ms: number;
}

export function checkHealth(
  port: number,
  path: string,
  timeoutMs: number,
  options: { host?: string; hostHeader?: string } = {},
): Promise<HealthResult> {
  const started = performance.now();
  return new Promise((resolve) => {
    const done = (r: Omit<HealthResult, 'ms'>): void => resolve({ ...r, ms: Math.round(performance.now() - started) });
    const req = http.request(
      {
        host: options.host ?? '127.0.0.1',
        port,
        path,
        method: 'GET',
        agent: false,
        headers: { host: options.hostHeader ?? `127.0.0.1:${port}`, 'user-agent': 'bgproxy-health', connection: 'close' },
      },
      (res) => {
        const status = res.statusCode ?? 0;
        res.resume();
        res.once('end', () => undefined);
        req.setTimeout(0);
        if (status >= 200 && status < 400) done({ ok: true, status });
        else done({ ok: false, status, reason: `HTTP ${status}` });
        res.once('error', () => undefined);
      },
    );
    req.setTimeout(timeoutMs, () => {
      req.destroy();
      done({ ok: false, reason: `timed out after ${timeoutMs} ms` });
    });
    req.once('error', (err: NodeJS.ErrnoException) => {
      done({ ok: false, reason: err.code === 'ECONNREFUSED' ? 'connection refused' : err.message });
    });
    req.end();
  });
}
