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
    let timer: NodeJS.Timeout | undefined;
    const done = (r: Omit<HealthResult, 'ms'>): void => {
      clearTimeout(timer);
      resolve({ ...r, ms: Math.round(performance.now() - started) });
    };
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
        res.once('error', () => undefined);
        if (status >= 200 && status < 400) done({ ok: true, status });
        else done({ ok: false, status, reason: `HTTP ${status}` });
      },
    );
    // A 101 the probe never asked for: Node would drop the socket without a word.
    req.once('upgrade', (_res, socket) => {
      socket.destroy();
      done({ ok: false, status: 101, reason: 'HTTP 101 (switched protocols unasked)' });
    });
    // The whole answer's head within timeoutMs, however slowly its bytes come.
    timer = setTimeout(() => {
      req.destroy();
      done({ ok: false, reason: `timed out after ${timeoutMs} ms` });
    }, timeoutMs);
    req.once('error', (err: NodeJS.ErrnoException) => {
      done({ ok: false, reason: err.code === 'ECONNREFUSED' ? 'connection refused' : err.message });
    });
    req.end();
  });
}
