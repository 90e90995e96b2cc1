// Node's own HTTP/1.1 parser (llhttp, the parser behind http.Server and undici), used
// directly on both sides of the proxy so a request costs one parse per direction and no
// IncomingMessage/ServerResponse/ClientRequest objects. It is reached through node:http's
// internal `_http_common` module, the same binding on Node 20, 22, 24 and 26 (a
// documentation-only deprecation, DEP0199, from Node 24): this file is the one place that
// knows, and it checks the shape it needs at load so a Node that changes it fails at start
// with one line (engineProblem), not per request.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

export interface ParserError extends Error {
  code: string;
  reason?: string;
  bytesParsed?: number;
}

/** The native parser's surface as node:http uses it. */
export interface NativeParser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(data: Buffer): number | ParserError;
  finish(): undefined | ParserError;
  consume(handle: unknown): void;
  unconsume(): void;
  getCurrentBuffer(): Buffer;
  pause(): void;
  resume(): void;
  close(): void;
  free(): void;
  [key: number]: unknown;
}

interface ParserClass {
  new (): NativeParser;
  REQUEST: number;
  RESPONSE: number;
  kOnMessageBegin: number;
  kOnHeaders: number;
  kOnHeadersComplete: number;
  kOnBody: number;
  kOnMessageComplete: number;
  kOnExecute: number;
  kLenientNone?: number;
}

/** The internal's exports as the engine needs them; null when this Node has no such module. */
function loadCommon(): { HTTPParser: ParserClass; methods: string[] } | null {
  try {
    return require('_http_common') as { HTTPParser: ParserClass; methods: string[] };
  } catch {
    return null;
  }
}

const common = loadCommon();
const NEEDED = ['REQUEST', 'RESPONSE', 'kOnMessageBegin', 'kOnHeaders', 'kOnHeadersComplete', 'kOnBody', 'kOnMessageComplete', 'kOnExecute'] as const;
const lacking = common === null ? 'the _http_common module' : typeof common.HTTPParser !== 'function' ? 'HTTPParser' : NEEDED.find((k) => typeof common.HTTPParser[k] !== 'number');

/**
 * Why this Node cannot run the engine, as one line naming the Node version, or null. Checked
 * by serve (and the embedding handlers) at start, never per request; nothing here throws at
 * load, so the commands that need no proxy still work on such a Node.
 */
export const engineProblem: string | null =
  lacking === undefined
    ? null
    : `Node ${process.version} lacks ${lacking} in node:http's internal HTTP parser binding, which bgproxy's proxy engine needs (tested on Node 20, 22, 24 and 26)`;

const Parser = (common?.HTTPParser ?? { REQUEST: 0, RESPONSE: 1 }) as ParserClass;

export const REQUEST = Parser.REQUEST;
export const RESPONSE = Parser.RESPONSE;
export const kOnMessageBegin = Parser.kOnMessageBegin;
export const kOnHeaders = Parser.kOnHeaders;
export const kOnHeadersComplete = Parser.kOnHeadersComplete;
export const kOnBody = Parser.kOnBody;
export const kOnMessageComplete = Parser.kOnMessageComplete;
export const kOnExecute = Parser.kOnExecute;
/** The method names, indexed by the number kOnHeadersComplete passes. */
export const METHODS: readonly string[] = common?.methods ?? [];

const free: NativeParser[] = [];
const RESOURCE = {};

/** A parser ready for `type` (strict: no lenient flags), from a small free list. */
export function acquireParser(type: number, maxHeaderSize: number): NativeParser {
  const p = free.pop() ?? new Parser();
  p.initialize(type, RESOURCE, maxHeaderSize, 0);
  return p;
}

/** Gives a parser back once its socket is gone; its callbacks are dropped so nothing is kept alive. */
export function releaseParser(p: NativeParser, consumed: boolean): void {
  if (consumed) p.unconsume();
  p[kOnMessageBegin] = null;
  p[kOnHeaders] = null;
  p[kOnHeadersComplete] = null;
  p[kOnBody] = null;
  p[kOnMessageComplete] = null;
  p[kOnExecute] = null;
  if (free.length < 256) free.push(p);
  else p.close();
}

/** Whether the socket's handle can feed a parser directly (a TCP socket; not a JS stream). */
export function consumable(handle: unknown): boolean {
  const h = handle as { isStreamBase?: boolean; _consumed?: boolean } | null | undefined;
  return h?.isStreamBase === true && h._consumed !== true;
}
