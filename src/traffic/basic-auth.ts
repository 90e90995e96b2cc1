// HTTP Basic authentication against one user and a scrypt hash. A credential that checked
// out is remembered so the ~50 ms scrypt runs once per client, not per request; concurrent
// checks of one credential share one scrypt. The memory is keyed by the header's base64 as
// sent: a Map lookup hashes the presented string and tells only whether that exact string
// checked out before, nothing about a stored one (hashing it with SHA-256 first cost ~1 µs
// per request for no gain: the process holds every request's header in clear anyway).
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Verdict } from '../proxy/gate.js';
import { answer } from './answers.js';
import { type PasswordHash, parseHash, verifyPassword } from './passwd.js';

/** Remembered good credentials; a new one past this evicts the oldest. */
const REMEMBER = 256;
/** scrypt checks running at once (each holds 16 MB); past it a new credential gets 429. */
const MAX_CHECKS = 8;
const BASIC = /^basic[ \t]+([A-Za-z0-9+/]+={0,2})[ \t]*$/i;

const FORWARD_STRIPPED: Verdict = Object.freeze({ kind: 'forward', stripRequestHeaders: Object.freeze(['authorization']) });
const BUSY = answer(429, 'bgproxy: too many password checks at once; try again', [['retry-after', '1']]);

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

export class BasicAuth {
  readonly user: string;
  readonly #userDigest: Buffer;
  readonly #hash: PasswordHash;
  readonly #refused: Verdict;
  readonly #good = new Map<string, true>();
  readonly #checking = new Map<string, Promise<Verdict>>();

  constructor(user: string, hash: string, realm: string) {
    const h = parseHash(hash);
    if (h === null) throw new Error('not a bgproxy passwd hash');
    this.user = user;
    this.#userDigest = digest(user);
    this.#hash = h;
    this.#refused = answer(401, 'bgproxy: authentication required', [['www-authenticate', `Basic realm="${realm}", charset="UTF-8"`]]);
  }

  /** The verdict for an Authorization header value: forward without it, 401, or a wait for scrypt. */
  check(authorization: string | undefined): Verdict {
    if (authorization === undefined) return this.#refused;
    const m = BASIC.exec(authorization);
    if (m === null) return this.#refused;
    const key = m[1]!;
    if (this.#good.has(key)) return FORWARD_STRIPPED;
    const pending = this.#checking.get(key);
    if (pending !== undefined) return { kind: 'wait', until: pending };
    if (this.#checking.size >= MAX_CHECKS) return BUSY;
    const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return this.#refused;
    const until = this.#verify(key, decoded.slice(0, colon), decoded.slice(colon + 1));
    this.#checking.set(key, until);
    return { kind: 'wait', until };
  }

  async #verify(key: string, user: string, password: string): Promise<Verdict> {
    try {
      // Both compared every time, in constant time: a wrong user costs as much as a wrong password.
      const userOk = timingSafeEqual(digest(user), this.#userDigest);
      const passwordOk = await verifyPassword(password, this.#hash);
      if (!(userOk && passwordOk)) return this.#refused;
      if (this.#good.size >= REMEMBER) this.#good.delete(this.#good.keys().next().value!);
      this.#good.set(key, true);
      return FORWARD_STRIPPED;
    } catch {
      return this.#refused;
    } finally {
      this.#checking.delete(key);
    }
  }
}
