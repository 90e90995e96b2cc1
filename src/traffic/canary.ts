// The canary split as a gate: a share of live-host requests goes to the canary color.
// Each client gets a bucket 0..9999, stable: a cookie the proxy sets (and removes from the
// request before the app sees it), or for a client that sends none, a hash of its address.
// A bucket below the share goes to the canary, so raising the share keeps earlier clients there.
import type { Forward, Gate, RequestView, Verdict } from '../proxy/gate.js';
import { clientAddress } from './address.js';
import type { CanaryState } from './state.js';

export const CANARY_COOKIE = 'bgproxy_canary';
const COOKIE_EQ = `${CANARY_COOKIE}=`;
export const BUCKETS = 10_000;

/** FNV-1a, 32 bits, continuing from `h`: fast and spread well enough over addresses. */
function fnv(s: string, h = 0x811c9dc5): number {
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

interface Split {
  readonly state: CanaryState;
  readonly prefix: string;
  /** The hash of `${id}|`, so a client's bucket hashes only its address per request. */
  readonly seed: number;
  readonly cookiePrefix: string;
  /** Client with our cookie alone in its Cookie header: strip it, to one color or the other. */
  readonly canaryStrip: Forward;
  readonly liveStrip: Forward;
}

const STRIP_COOKIE = Object.freeze(['cookie']);

export class CanaryGate implements Gate {
  #split: Split | null = null;
  #trusted: ReadonlySet<string>;

  constructor(trusted: ReadonlySet<string>) {
    this.#trusted = trusted;
  }

  setTrusted(trusted: ReadonlySet<string>): void {
    this.#trusted = trusted;
  }

  set(state: CanaryState | null): void {
    this.#split =
      state === null
        ? null
        : {
            state,
            prefix: `${state.id}-`,
            seed: fnv(`${state.id}|`),
            cookiePrefix: `${CANARY_COOKIE}=${state.id}-`,
            canaryStrip: Object.freeze({ kind: 'forward', color: state.color, stripRequestHeaders: STRIP_COOKIE }),
            liveStrip: Object.freeze({ kind: 'forward', stripRequestHeaders: STRIP_COOKIE }),
          };
  }

  get state(): CanaryState | null {
    return this.#split?.state ?? null;
  }

  /** The bucket a cookie-less client at `address` gets in this canary. */
  static bucketOf(id: string, address: string): number {
    return fnv(address, fnv(`${id}|`)) % BUCKETS;
  }

  check(req: RequestView): Verdict | null {
    const split = this.#split;
    if (split === null || req.role !== 'live') return null;
    const cookie = req.header('cookie');
    const at = cookie === undefined ? -1 : findCookie(cookie);
    if (at >= 0) {
      const end = cookie!.indexOf(';', at);
      const bucket = cookie!.startsWith(split.prefix, at + COOKIE_EQ.length)
        ? parseBucket(cookie!, at + COOKIE_EQ.length + split.prefix.length, end < 0 ? cookie!.length : end)
        : -1;
      const rest = without(cookie!, at, end);
      if (bucket >= 0) {
        const toCanary = bucket < split.state.share;
        if (rest === '') return toCanary ? split.canaryStrip : split.liveStrip;
        return { kind: 'forward', color: toCanary ? split.state.color : undefined, setRequestHeaders: [['cookie', rest]] } as Forward;
      }
      // A cookie from an older canary, or a forged one: assign afresh, and still keep it from the app.
      return this.#assign(split, req, rest === '' ? null : rest);
    }
    return this.#assign(split, req, undefined);
  }

  /** A client without a valid cookie: its address decides, and the cookie remembers it. */
  #assign(split: Split, req: RequestView, rest: string | null | undefined): Forward {
    const bucket = fnv(clientAddress(req, this.#trusted), split.seed) % BUCKETS;
    const secure = req.tls !== null ? '; Secure' : '';
    const fwd: { -readonly [K in keyof Forward]: Forward[K] } = {
      kind: 'forward',
      addResponseHeaders: [['set-cookie', `${split.cookiePrefix}${bucket}; Path=/; Max-Age=604800; HttpOnly; SameSite=Lax${secure}`]],
    };
    if (bucket < split.state.share) fwd.color = split.state.color;
    if (rest === null) fwd.stripRequestHeaders = STRIP_COOKIE;
    else if (rest !== undefined) fwd.setRequestHeaders = [['cookie', rest]];
    return fwd;
  }
}

/** Index of "bgproxy_canary=" as a whole cookie name in a Cookie header, or -1. */
function findCookie(cookie: string): number {
  let from = 0;
  for (;;) {
    const i = cookie.indexOf(COOKIE_EQ, from);
    if (i < 0) return -1;
    let j = i - 1;
    while (j >= 0 && cookie.charCodeAt(j) === 32) j--;
    if (j < 0 || cookie.charCodeAt(j) === 59 /* ; */) return i;
    from = i + 1;
  }
}

/** The decimal bucket in cookie[from, end) (trailing spaces allowed), or -1. */
function parseBucket(cookie: string, from: number, end: number): number {
  while (end > from && cookie.charCodeAt(end - 1) === 32) end--;
  if (end === from || end - from > 4) return -1;
  let n = 0;
  for (let i = from; i < end; i++) {
    const d = cookie.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

function isSep(c: number): boolean {
  return c === 59 /* ; */ || c === 32 || c === 9;
}

/** The Cookie header without the cookie at [at, end) (end -1: to the end), "" when none is left. */
function without(cookie: string, at: number, end: number): string {
  let b = at;
  while (b > 0 && isSep(cookie.charCodeAt(b - 1))) b--;
  let a = end < 0 ? cookie.length : end + 1;
  while (a < cookie.length && isSep(cookie.charCodeAt(a))) a++;
  if (b === 0) return a >= cookie.length ? '' : cookie.slice(a);
  return a >= cookie.length ? cookie.slice(0, b) : `${cookie.slice(0, b)}; ${cookie.slice(a)}`;
}
