// When to renew and how long to wait after a failure, both from the certificate's own
// lifetime: a 90-day certificate renews after 60 days and retries within minutes to hours;
// a test CA's 30-second certificate renews after 20 s and retries within seconds.
import type { Certificate } from './certificate.js';

const DAY = 86_400_000;
/** What an order without a certificate yet plans with (Let's Encrypt's lifetime). */
const DEFAULT_LIFETIME_MS = 90 * DAY;

function lifetime(c: Certificate | null): number {
  return c ? Math.max(1000, c.notAfter.getTime() - c.notBefore.getTime()) : DEFAULT_LIFETIME_MS;
}

/** Two thirds into the certificate's lifetime. */
export function renewAt(c: Certificate): number {
  return c.notBefore.getTime() + Math.floor((lifetime(c) * 2) / 3);
}

const clamp = (v: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, v));

/**
 * The wait before retry number `failures` (1, 2, …): doubling from a hundredth of the
 * lifetime (1 s to 5 min), capped at a tenth of it (4 s to 6 h) and, for a certificate
 * still valid, at a quarter of what is left of it. Five failed validations an hour per host
 * is Let's Encrypt's limit: 5, 10, 20, 40 min stays under it.
 */
export function backoffMs(failures: number, c: Certificate | null, recheck = false): number {
  const life = lifetime(c);
  const base = clamp(life / 100, 1000, 5 * 60_000);
  let cap = clamp(life / 10, 4000, 6 * 3_600_000);
  if (c && !recheck) cap = Math.max(1000, Math.min(cap, (c.notAfter.getTime() - Date.now()) / 4));
  return Math.round(Math.min(cap, base * 2 ** Math.min(30, Math.max(0, failures - 1))));
}
