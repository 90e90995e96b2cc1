// Password hashes for access.*.basicAuth: scrypt from node:crypto in a PHC-style string,
// "$scrypt$ln=14,r=8,p=1$<salt>$<hash>" (base64, no padding). bgproxy.json never holds a
// plain password; `bgproxy passwd` makes the hash.
import { randomBytes, scrypt, scryptSync, timingSafeEqual } from 'node:crypto';

export interface PasswordHash {
  /** log2 of scrypt's N. */
  ln: number;
  r: number;
  p: number;
  salt: Buffer;
  hash: Buffer;
}

/** 2^14 x 8 x 128 bytes = 16 MB and ~50 ms per check: costly to guess, cheap once (checks are cached). */
const DEFAULT = { ln: 14, r: 8, p: 1 } as const;
const FORMAT = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]{16,})\$([A-Za-z0-9+/]{32,})$/;

function maxmem(h: Pick<PasswordHash, 'ln' | 'r' | 'p'>): number {
  return 256 * 2 ** h.ln * h.r + 1024 * 1024;
}

/** The PHC string for `password` with a fresh 16-byte salt. */
export function hashPassword(password: string, params: { ln: number; r: number; p: number } = DEFAULT): string {
  const salt = randomBytes(16);
  const hash = scryptSync(password.normalize('NFC'), salt, 32, { N: 2 ** params.ln, r: params.r, p: params.p, maxmem: maxmem(params) });
  const b64 = (b: Buffer): string => b.toString('base64').replace(/=+$/, '');
  return `$scrypt$ln=${params.ln},r=${params.r},p=${params.p}$${b64(salt)}$${b64(hash)}`;
}

/** Parses a hash made by hashPassword; null when it is not one (config validation names the key). */
export function parseHash(s: string): PasswordHash | null {
  const m = FORMAT.exec(s);
  if (!m) return null;
  const [ln, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  // Bounds keep a hand-edited hash from asking for gigabytes or minutes per check.
  if (ln < 10 || ln > 20 || r < 1 || r > 32 || p < 1 || p > 4 || 128 * 2 ** ln * r > 512 * 1024 * 1024) return null;
  return { ln, r, p, salt: Buffer.from(m[4]!, 'base64'), hash: Buffer.from(m[5]!, 'base64') };
}

let checks = 0;

/** How many scrypt checks this process has started (a wrong user must cost one, like a wrong password). */
export function passwordChecks(): number {
  return checks;
}

/** Whether `password` matches; the comparison takes the same time wherever they differ. */
export function verifyPassword(password: string, h: PasswordHash): Promise<boolean> {
  checks++;
  return new Promise((resolve, reject) => {
    // Asynchronous scrypt runs on the libuv pool: a check never blocks the proxy's event loop.
    scrypt(password.normalize('NFC'), h.salt, h.hash.length, { N: 2 ** h.ln, r: h.r, p: h.p, maxmem: maxmem(h) }, (err, key) => {
      if (err) reject(err);
      else resolve(key.length === h.hash.length && timingSafeEqual(key, h.hash));
    });
  });
}
