// Header rewriting in both directions. Hop-by-hop headers (RFC 9110 §7.6.1) belong to one
// connection and never cross the proxy; X-Forwarded-* are set by us, not trusted from clients.
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'trailers',
  'transfer-encoding',
  'upgrade',
]);

function connectionListed(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  const s = Array.isArray(value) ? value.join(',') : value;
  if (s === 'keep-alive' || s === 'close') return [];
  return s
    .split(',')
    .map((x) => x.trim().toLowerCase())
    .filter((x) => x !== '' && x !== 'close' && x !== 'keep-alive');
}

export interface ForwardedInfo {
  /** The client's address as seen on the socket. */
  remoteAddress: string;
  /** Whether that address is a configured trusted proxy whose X-Forwarded-* we extend. */
  trusted: boolean;
  /** The client connection's scheme: 'https' when it came over the TLS listener. */
  proto: 'http' | 'https';
}

/**
 * Rewrites req.headers in place for the upstream request (http-proxy copies req.headers).
 * Keeps the body framing honest: a chunked request stays chunked (never turned into
 * Content-Length: 0 with a body behind it), Content-Length alone stays as is.
 */
export function prepareRequestHeaders(req: IncomingMessage, fwd: ForwardedInfo, upgrade: boolean): void {
  const h: IncomingHttpHeaders = req.headers;
  const chunked = h['transfer-encoding'] !== undefined;
  const upgradeValue = h.upgrade;
  for (const name of connectionListed(h.connection)) delete h[name];
  for (const name of HOP_BY_HOP) if (h[name] !== undefined) delete h[name];
  if (chunked) {
    // Node's parser accepted the message, so its framing is chunked; say so upstream.
    h['transfer-encoding'] = 'chunked';
    delete h['content-length'];
  }
  // Node answers "100 Continue" to the client itself; the upstream gets a plain request.
  delete h.expect;
  if (upgrade && upgradeValue !== undefined) {
    h.connection = 'upgrade';
    h.upgrade = upgradeValue;
  }

  const host = h.host ?? '';
  if (fwd.trusted) {
    const prior = h['x-forwarded-for'];
    h['x-forwarded-for'] = prior ? `${Array.isArray(prior) ? prior.join(', ') : prior}, ${fwd.remoteAddress}` : fwd.remoteAddress;
    if (h['x-forwarded-proto'] === undefined) h['x-forwarded-proto'] = fwd.proto;
    if (h['x-forwarded-host'] === undefined && host !== '') h['x-forwarded-host'] = host;
  } else {
    h['x-forwarded-for'] = fwd.remoteAddress;
    h['x-forwarded-proto'] = fwd.proto;
    if (host !== '') h['x-forwarded-host'] = host;
    else delete h['x-forwarded-host'];
    delete h.forwarded;
    delete h['x-real-ip'];
  }
}

/**
 * The upstream response's headers as a raw [name, value, …] list for res.writeHead,
 * without hop-by-hop headers. Raw form keeps duplicates (Set-Cookie) and the app's casing.
 */
export function responseHeaders(rawHeaders: string[], connection: string | string[] | undefined): string[] {
  const listed = connectionListed(connection);
  const out: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || (listed.length > 0 && listed.includes(lower))) continue;
    out.push(name, rawHeaders[i + 1]!);
  }
  return out;
}
