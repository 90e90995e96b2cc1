// The load generator behind `bgproxy verify`: steady traffic at one URL from
// keep-alive clients, clients that open a new connection per request, optional
// POSTs and one websocket, recording every request as a Sample. It never throws
// for a failed request: a failure is a Sample with an error kind, so a summary
// can count it.
import { setMaxListeners } from 'node:events';
import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { classifyError, classifyStatus, type ErrorKind } from './stats.js';
import { startWsProbe, type WsResult } from './ws-probe.js';

export type { WsResult };

export interface Sample {
  /** ms since the load started, when the request was issued. */
  t: number;
  /** Latency in ms, until the whole body arrived or the request failed. */
  ms: number;
  status: number | null;
  /** Which release answered (see LoadOptions.label); null when nothing answered. */
  label: string | null;
  error: ErrorKind | null;
  keepAlive: boolean;
  method: 'GET' | 'POST';
  /** Index of the client that sent it (keep-alive clients first). */
  client: number;
}

export interface Mark {
  t: number;
  label: string;
}

export interface LoadResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface LoadOptions {
  /** e.g. http://127.0.0.1:8080/ */
  url: string;
  /** Host header to send (the live host name), when it differs from the URL's. */
  host?: string;
  durationMs: number;
  /** Keep-alive clients; max(2, connections/4) one-connection-per-request clients are added. */
  connections: number;
  /** Every 10th request of each client is a POST with a small JSON body (2xx expected). */
  posts?: boolean;
  /** Keep one websocket open on the same URL and Host, expecting an echo every ~100 ms. */
  websocket?: boolean;
  /** Default 5000. A request slower than this counts as a 'timeout' failure. */
  requestTimeoutMs?: number;
  /** Names the release that answered; default: x-color + ' ' + x-version, else the body's first line. */
  label?: (res: LoadResponse) => string;
  signal?: AbortSignal;
  onSample?: (s: Sample) => void;
  /** https: URLs: CA certificates to trust besides the system's (a private or test CA). */
  ca?: Buffer;
}

/** For an https: URL: the CA to trust and the SNI name (the Host sent, since bgproxy wants them to agree). */
export function tlsOptionsFor(url: URL, host: string | undefined, ca: Buffer | undefined): { ca?: Buffer; servername?: string } | null {
  if (url.protocol !== 'https:') return null;
  const name = (host ?? url.hostname).replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return { ...(ca ? { ca } : {}), ...(net.isIP(name) ? {} : { servername: name }) };
}

export interface LoadResult {
  url: string;
  /** Date.now() when the load started. */
  startedAt: number;
  /** Measured from start until the last client finished (in-flight requests included). */
  durationMs: number;
  /** ms during which requests were issued: the requested duration, or less after stop(). */
  loadMs: number;
  keepAliveClients: number;
  oneShotClients: number;
  samples: Sample[];
  marks: Mark[];
  ws: WsResult | null;
}

export interface LoadHandle {
  /** Records a named instant (e.g. 'cutover') on the result's timeline. */
  mark(label: string): void;
  /** ms since the load started. */
  elapsed(): number;
  /** Ends early: in-flight requests are abandoned (not counted), then `done` resolves. */
  stop(): void;
  /** The requests answered or failed so far (verify's baseline before a cutover), with a few of the failures. */
  sofar(): { requests: number; failed: number; examples: Sample[] };
  readonly done: Promise<LoadResult>;
}

const BODY_KEEP = 4096;
const POST_EVERY = 10;

export function defaultLabel(res: LoadResponse): string {
  const color = headerValue(res.headers['x-color']);
  const version = headerValue(res.headers['x-version']);
  if (color !== undefined || version !== undefined) {
    return [color, version].filter((v) => v !== undefined).join(' ');
  }
  const line = res.body.trimStart().split('\n', 1)[0] ?? '';
  return line.trim().slice(0, 40);
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

export function runLoad(opts: LoadOptions): Promise<LoadResult> {
  return startLoad(opts).done;
}

export function startLoad(opts: LoadOptions): LoadHandle {
  const url = new URL(opts.url);
  const keepAliveClients = Math.max(1, Math.floor(opts.connections));
  const oneShotClients = Math.max(2, Math.ceil(keepAliveClients / 4));
  const timeoutMs = opts.requestTimeoutMs ?? 5000;
  const label = opts.label ?? defaultLabel;
  const tls = tlsOptionsFor(url, opts.host, opts.ca);
  const agent = tls ? new https.Agent({ keepAlive: true, maxSockets: keepAliveClients, ...tls }) : new http.Agent({ keepAlive: true, maxSockets: keepAliveClients });
  const startedAt = Date.now();
  const t0 = performance.now();
  const elapsed = (): number => performance.now() - t0;
  const samples: Sample[] = [];
  const marks: Mark[] = [];
  const stopper = new AbortController();
  // Every in-flight request listens on it; that is not a leak.
  setMaxListeners(0, stopper.signal);
  let stopped = false;
  let loadMs: number | null = null;
  const stopIssuing = (): void => {
    stopped = true;
    loadMs ??= elapsed();
  };

  const stop = (): void => {
    if (stopper.signal.aborted) return;
    stopIssuing();
    stopper.abort();
  };
  const onAbort = (): void => stop();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  if (opts.signal?.aborted) stop();
  const endTimer = setTimeout(stopIssuing, opts.durationMs);

  // A throwing onSample stops the run and rejects `done`, after every client stopped.
  const callbackErrors: unknown[] = [];
  const record = (s: Sample): void => {
    samples.push(s);
    try {
      opts.onSample?.(s);
    } catch (error) {
      callbackErrors.push(error);
      stop();
    }
  };

  const client = async (index: number, keepAlive: boolean): Promise<void> => {
    for (let n = 0; !stopped; n++) {
      const method = opts.posts === true && n % POST_EVERY === POST_EVERY - 1 ? 'POST' : 'GET';
      const t = elapsed();
      const r = await request(url, {
        method,
        host: opts.host,
        tls,
        agent: keepAlive ? agent : false,
        timeoutMs,
        signal: stopper.signal,
        body: method === 'POST' ? JSON.stringify({ client: index, n, pad: 'x'.repeat(64) }) : undefined,
      });
      if (r === 'aborted') return;
      const error = 'error' in r ? r.error : classifyStatus(r.status);
      record({
        t,
        ms: elapsed() - t,
        status: 'error' in r ? null : r.status,
        label: 'error' in r ? null : safeLabel(label, r),
        error,
        keepAlive,
        method,
        client: index,
      });
      // A refused connection returns at once; don't spin the CPU the proxy needs.
      if (error === 'connect') await delay(10, stopper.signal);
    }
  };

  const ws =
    opts.websocket === true
      ? startWsProbe({ url, host: opts.host, elapsed, timeoutMs, tls })
      : null;

  const clients: Promise<void>[] = [];
  for (let i = 0; i < keepAliveClients; i++) clients.push(client(i, true));
  for (let i = 0; i < oneShotClients; i++) clients.push(client(keepAliveClients + i, false));

  const done = (async (): Promise<LoadResult> => {
    await Promise.all(clients);
    clearTimeout(endTimer);
    opts.signal?.removeEventListener('abort', onAbort);
    const wsResult = ws === null ? null : await ws.finish();
    agent.destroy();
    if (callbackErrors.length > 0) throw callbackErrors[0];
    return {
      url: opts.url,
      startedAt,
      durationMs: elapsed(),
      loadMs: loadMs ?? elapsed(),
      keepAliveClients,
      oneShotClients,
      samples: samples.sort((a, b) => a.t - b.t),
      marks,
      ws: wsResult,
    };
  })();

  return {
    mark: (l) => {
      marks.push({ t: elapsed(), label: l });
    },
    elapsed,
    stop,
    sofar: () => {
      const failures = samples.filter((x) => x.error !== null);
      return { requests: samples.length, failed: failures.length, examples: failures.slice(0, 3) };
    },
    done,
  };
}

function safeLabel(label: (res: LoadResponse) => string, res: LoadResponse): string {
  try {
    return label(res);
  } catch {
    return '?';
  }
}

interface RequestOptions {
  method: 'GET' | 'POST';
  host: string | undefined;
  tls: { ca?: Buffer; servername?: string } | null;
  agent: http.Agent | false;
  timeoutMs: number;
  signal: AbortSignal;
  body: string | undefined;
}

type RequestOutcome = LoadResponse | { error: ErrorKind } | 'aborted';

function request(url: URL, o: RequestOptions): Promise<RequestOutcome> {
  return new Promise((resolve) => {
    if (o.signal.aborted) return resolve('aborted');
    const headers: http.OutgoingHttpHeaders = {};
    if (o.host !== undefined) headers.host = o.host;
    if (o.agent === false) headers.connection = 'close';
    if (o.body !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = Buffer.byteLength(o.body);
    }
    let settled = false;
    const finish = (out: RequestOutcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      o.signal.removeEventListener('abort', onAbort);
      resolve(out);
    };
    const req = o.tls ? https.request(url, { method: o.method, headers, agent: o.agent, ...o.tls }) : http.request(url, { method: o.method, headers, agent: o.agent });
    const onAbort = (): void => {
      finish('aborted');
      req.destroy();
    };
    o.signal.addEventListener('abort', onAbort, { once: true });
    const timer = setTimeout(() => {
      finish({ error: 'timeout' });
      req.destroy();
    }, o.timeoutMs);
    req.on('error', (err) => finish({ error: classifyError(err) }));
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      let kept = 0;
      res.on('data', (c: Buffer) => {
        if (kept < BODY_KEEP) {
          chunks.push(c);
          kept += c.length;
        }
      });
      res.on('error', (err) => finish({ error: classifyError(err) }));
      // 'aborted' fires when the connection dies mid-body; 'end' never comes then.
      res.on('aborted', () => finish({ error: 'reset' }));
      res.on('end', () =>
        finish({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString('utf8', 0, Math.min(kept, BODY_KEEP)),
        }),
      );
    });
    req.end(o.body);
  });
}

function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
