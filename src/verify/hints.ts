// "Likely cause" lines under verify's summary: a failure class that has one usual reason gets
// it named with the flag or setting that fixes it. Before, a TLS site answered plain HTTP with
// 28,521 redirects and the summary said only "failed"; the Flask example's 405 on POST and 400
// on the websocket looked like bgproxy's fault though --no-posts and --no-websocket exist.
import type { Sample, WsResult } from './load.js';

export interface FailedStatus {
  status: number;
  method: 'GET' | 'POST';
  count: number;
}

/** Failed answers (non-2xx) grouped by status and method, most frequent first. */
export function failedStatuses(samples: readonly Sample[]): FailedStatus[] {
  const counts = new Map<string, FailedStatus>();
  for (const s of samples) {
    if (s.error !== 'non2xx' || s.status === null) continue;
    const key = `${s.status} ${s.method}`;
    const c = counts.get(key);
    if (c) c.count++;
    else counts.set(key, { status: s.status, method: s.method, count: 1 });
  }
  return [...counts.values()].sort((a, b) => b.count - a.count);
}

export interface HintInput {
  url: string;
  requests: number;
  failed: number;
  /** Failures by kind: only `connect` is read here. */
  connectFailed: number;
  statuses: readonly FailedStatus[];
  posts: { requests: number; failed: number };
  ws: WsResult | null;
}

const REDIRECTS = new Set([301, 302, 307, 308]);

/** One line per likely cause found, each naming what to do; empty when nothing failed or nothing is recognised. */
export function likelyCauses(s: HintInput): string[] {
  const out: string[] = [];
  const total = (pred: (f: FailedStatus) => boolean): number => s.statuses.filter(pred).reduce((n, f) => n + f.count, 0);
  const redirects = total((f) => REDIRECTS.has(f.status));
  if (redirects > 0 && redirects === s.failed && s.url.startsWith('http:')) {
    out.push(
      `every failed answer was a redirect (${s.statuses.map((f) => f.status).filter((v, i, a) => a.indexOf(v) === i).join(', ')}): the site redirects plain HTTP to HTTPS (tls.redirectHttp); verify its TLS listener: --url https://HOST:PORT/ (--ca FILE for a private CA), or --root alone, which does it when tls is configured`,
    );
  }
  const post405 = total((f) => f.method === 'POST' && (f.status === 405 || f.status === 501));
  if (post405 > 0 && post405 === s.posts.failed) {
    out.push(`the app refuses POST at ${new URL(s.url).pathname} (405 Method Not Allowed) while GETs pass: rerun with --no-posts`);
  }
  const wsStatus = s.ws && !s.ws.ok ? /(?:Unexpected server response: |upgrade refused: HTTP )(\d{3})/.exec(s.ws.error ?? '')?.[1] : undefined;
  if (wsStatus !== undefined) {
    out.push(`the app does not accept a websocket at ${new URL(s.url).pathname} (it answered ${wsStatus} to the upgrade): rerun with --no-websocket, or give it a websocket echo endpoint`);
  }
  const auth = total((f) => f.status === 401 || f.status === 403);
  if (auth > 0 && auth === s.failed) {
    out.push(`every failed answer was ${total((f) => f.status === 401) > 0 ? '401' : '403'}: access rules (access.live: allow, basicAuth) or the app refuse this client; verify from an allowed address, or check the rules in bgproxy.json`);
  }
  if (s.connectFailed > 0 && s.connectFailed === s.requests) {
    out.push(`no connection could be made to ${s.url}: is bgproxy serve running and listening there? (bgproxy status)`);
  }
  return out;
}
