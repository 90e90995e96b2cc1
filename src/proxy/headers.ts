// Header rewriting in both directions. Hop-by-hop headers (RFC 9110 §7.6.1) belong to one
// connection and never cross the proxy (a Connection header cannot add framing or forwarding
// headers to them); X-Forwarded-* are set by us, not trusted from clients; names with an
// underscore are dropped.

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

/**
 * Headers a Connection header may never remove: the message's framing, its Host, and the
 * forwarding headers bgproxy's own rules decide on (trusted or replaced). Taken away as
 * "hop-by-hop", Content-Length left the body behind the head for the app to read as the
 * next request (smuggling); Host, X-Forwarded-* and the request id would lose bgproxy's word.
 */
function protectedFromConnection(lower: string): boolean {
  switch (lower) {
    case 'content-length':
    case 'transfer-encoding':
    case 'host':
    case 'forwarded':
    case 'x-real-ip':
    case 'x-request-id':
      return true;
    default:
      return lower.startsWith('x-forwarded-');
  }
}

function connectionListed(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  const s = Array.isArray(value) ? value.join(',') : value;
  if (s === 'keep-alive' || s === 'close') return [];
  return s
    .split(',')
    .map((x) => x.trim().toLowerCase())
    .filter((x) => x !== '' && x !== 'close' && x !== 'keep-alive' && !protectedFromConnection(x));
}

/**
 * Forwarding headers an untrusted client may not send: every X-Forwarded-* (Port, Prefix,
 * Ssl… not only the three bgproxy sets), Forwarded and X-Real-IP. Apps and frameworks read
 * them as the proxy's word.
 */
function forwardingHeader(lower: string): boolean {
  return lower.startsWith('x-forwarded-') || lower === 'forwarded' || lower === 'x-real-ip';
}

export interface ForwardedInfo {
  /** The client's address as seen on the socket. */
  remoteAddress: string;
  /** Whether that address is a configured trusted proxy whose X-Forwarded-* we extend. */
  trusted: boolean;
}

/**
 * The upstream response's headers as a raw [name, value, …] list for res.writeHead,
 * without hop-by-hop headers. Raw form keeps duplicates (Set-Cookie) and the app's casing.
 * With `requestId`, the app's own X-Request-Id gives way to it: the client sees one id, the
 * one in bgproxy's access log (an app that echoes what it was sent loses nothing). A 204 or
 * 304 loses its Content-Length: neither has a body (RFC 9110 §8.6), and a client that trusts
 * the header would wait for bytes that never come (a HEAD answer's is kept).
 */
export function responseHeaders(status: number, rawHeaders: string[], connection: string | string[] | undefined, requestId?: string): string[] {
  const listed = connectionListed(connection);
  const noLength = status === 204 || status === 304;
  const out: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || (listed.length > 0 && listed.includes(lower))) continue;
    if (requestId !== undefined && name.length === 12 && lower === 'x-request-id') continue;
    // Said to the proxy, not the client (nginx hides X-Accel-* too).
    if (name.length === 17 && lower === 'x-accel-buffering') continue;
    if (noLength && name.length === 14 && lower === 'content-length') continue;
    out.push(name, rawHeaders[i + 1]!);
  }
  if (requestId !== undefined) out.push('X-Request-Id', requestId);
  return out;
}

/**
 * Why an app's answer cannot be relayed, or null. A status below 100 is no answer (llhttp
 * reads any three digits, and as a 1xx it left the client waiting for one that never came).
 * Of the transfer codings (`te`, the fields joined) only plain chunked can be relayed
 * (Transfer-Encoding is hop-by-hop: the client is told of no other coding): llhttp de-chunks
 * `gzip, chunked` and the client would get gzip bytes as the body; with chunked not last
 * (`chunked, identity`, `identity`) it reads to the close without de-chunking; chunked twice
 * is not one chunked body. An answer without a body (`bodyless`) is relayed whatever it says.
 */
export function unrelayable(status: number, te: string | undefined, bodyless: boolean): string | null {
  if (status < 100) return 'upstream status below 100';
  if (te !== undefined && !bodyless && te.trim().toLowerCase() !== 'chunked') return 'upstream transfer-encoding other than chunked';
  return null;
}

export interface UpstreamHeadOptions {
  /** The client's address and whether it is a trusted proxy; the scheme it used. */
  fwd: ForwardedInfo & { proto: 'http' | 'https' };
  /** How the request body is framed upstream. */
  body: 'none' | 'length' | 'chunked';
  /** The Upgrade header value of an upgrade request, passed on with Connection: upgrade. */
  upgrade?: string;
  /** The Host to send instead of the client's (absolute-form targets); also used when there was none. */
  host?: string;
  /** The Host sent when the client sent none (HTTP/1.0); not reported as X-Forwarded-Host. */
  fallbackHost?: string;
  /** Request headers (lower-case names) a gate removed. */
  strip?: readonly string[];
  /** Request headers a gate sets, replacing the client's of the same name. */
  set?: ReadonlyArray<readonly [string, string]>;
  /** The request's id (see request-id.ts): sent as X-Request-Id instead of any the client sent. */
  requestId?: string;
}

/**
 * The request head sent to the app, as one string (written with headBytes): the client's
 * headers without hop-by-hop ones (and those its Connection header lists, save the framing
 * and forwarding ones), names with an underscore, Expect (answered here); X-Forwarded-*,
 * Forwarded and X-Real-IP only from trusted proxies, X-Forwarded-For/Proto/Host set by us
 * (extended only for trusted proxies), X-Request-Id set by us (request-id.ts decides
 * whether a trusted proxy's is kept), the body framing kept honest (a chunked body
 * stays chunked, never Content-Length with a body behind it). Always HTTP/1.1 keep-alive.
 */
export function upstreamHead(method: string, url: string, raw: string[], o: UpstreamHeadOptions): string {
  let connection: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 10 && name.toLowerCase() === 'connection') connection = connection === undefined ? raw[i + 1] : `${connection},${raw[i + 1]}`;
  }
  const listed = connectionListed(connection);
  const trusted = o.fwd.trusted;
  const set = o.set;
  const strip = set === undefined || set.length === 0 ? o.strip : [...(o.strip ?? []), ...set.map(([n]) => n.toLowerCase())];
  let head = `${method} ${url} HTTP/1.1\r\n`;
  let host: string | undefined;
  let xff: string | undefined;
  let hasProto = false;
  let hasXHost = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    const value = raw[i + 1]!;
    if (HOP_BY_HOP.has(lower) || (listed.length > 0 && listed.includes(lower))) continue;
    if (strip?.includes(lower)) continue;
    // An underscore name is dropped (nginx's underscores_in_headers off): CGI-style apps
    // (gunicorn, PHP) map X_Forwarded_For and X-Forwarded-For to one HTTP_X_FORWARDED_FOR.
    if (lower.includes('_')) continue;
    if (!trusted && forwardingHeader(lower)) continue;
    switch (lower) {
      case 'host':
        if (host !== undefined) continue;
        host = o.host ?? value;
        head += `Host: ${host}\r\n`;
        continue;
      case 'expect':
        continue;
      case 'content-length':
        // Gone when the body is re-framed chunked; kept as sent otherwise (a POST's "0" too).
        if (o.body === 'chunked') continue;
        break;
      case 'x-forwarded-for':
        if (trusted) xff = xff === undefined ? value : `${xff}, ${value}`;
        continue;
      case 'x-forwarded-proto':
        hasProto = true;
        break;
      case 'x-forwarded-host':
        hasXHost = true;
        break;
      case 'x-request-id':
        if (o.requestId !== undefined) continue;
        break;
    }
    head += `${name}: ${value}\r\n`;
  }
  if (host === undefined && o.host !== undefined) {
    host = o.host;
    head += `Host: ${host}\r\n`;
  } else if (host === undefined && o.fallbackHost !== undefined) head += `Host: ${o.fallbackHost}\r\n`;
  const remote = o.fwd.remoteAddress;
  head += `X-Forwarded-For: ${xff === undefined ? remote : `${xff}, ${remote}`}\r\n`;
  if (!hasProto) head += `X-Forwarded-Proto: ${o.fwd.proto}\r\n`;
  if (!hasXHost && host !== undefined && host !== '') head += `X-Forwarded-Host: ${host}\r\n`;
  if (o.requestId !== undefined) head += `X-Request-Id: ${o.requestId}\r\n`;
  if (set !== undefined) for (const [n, v] of set) head += `${n}: ${v}\r\n`;
  if (o.body === 'chunked') head += 'Transfer-Encoding: chunked\r\n';
  if (o.upgrade !== undefined) head += `Connection: upgrade\r\nUpgrade: ${o.upgrade}\r\n`;
  return `${head}\r\n`;
}

// Code units above U+00FF (surrogates included, so a pair stays in one run).
const ABOVE_LATIN1 = /[\u0100-\uffff]/;
const RUNS_ABOVE_LATIN1 = /[\u0100-\uffff]+/g;

/**
 * A head as the bytes to write: each character U+0000-U+00FF as the one byte it stands for
 * (llhttp hands header bytes over as latin1 strings, so a value reaches the other side as the
 * bytes that were sent, as nginx passes them), runs above U+00FF (a gate's own values) as UTF-8.
 */
export function headBytes(head: string): Buffer {
  if (!ABOVE_LATIN1.test(head)) return Buffer.from(head, 'latin1');
  const parts: Buffer[] = [];
  let from = 0;
  for (const m of head.matchAll(RUNS_ABOVE_LATIN1)) {
    parts.push(Buffer.from(head.slice(from, m.index), 'latin1'), Buffer.from(m[0], 'utf8'));
    from = m.index + m[0].length;
  }
  parts.push(Buffer.from(head.slice(from), 'latin1'));
  return Buffer.concat(parts);
}
