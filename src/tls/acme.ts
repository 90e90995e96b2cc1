// Automatic certificates: one ACME order per host list (the live hosts, the next hosts),
// obtained at start when missing, renewed in the background at two thirds of their
// lifetime, retried with backoff when the CA fails, and the old certificate served until
// a new one is in hand.
import dns from 'node:dns/promises';
import type { AcmeConfig, Role } from '../config.js';
import { BgError } from '../errors.js';
import type { Logger } from '../log.js';
import type { ChallengeType } from './acme-client.js';
import type { CertStore } from './cert-store.js';
import { type Certificate, covers } from './certificate.js';
import type { Challenges } from './challenges.js';
import { readAccountKey, readCertificate, writeAccountKey, writeCertificate } from './files.js';
import { backoffMs, renewAt } from './renewal.js';

export interface CertInfo {
  names: string[];
  issuer: string;
  notBefore: string;
  notAfter: string;
  serial: string;
}

export interface OrderStatus {
  id: Role;
  /** The hosts asked for (those covered by an own certificate are left out). */
  hosts: string[];
  /** Hosts left out of the last order because they do not resolve. */
  skipped: Array<{ host: string; reason: string }>;
  certificate: CertInfo | null;
  state: 'valid' | 'obtaining' | 'failed' | 'none';
  nextRenewal: string | null;
  lastRenewal: string | null;
  lastError: string | null;
  lastErrorAt: string | null;
  /** Failed attempts in a row. */
  failures: number;
}

export function certInfo(c: Certificate): CertInfo {
  return { names: c.names, issuer: c.issuer, notBefore: c.notBefore.toISOString(), notAfter: c.notAfter.toISOString(), serial: c.serial };
}

interface Deps {
  acme: AcmeConfig;
  root: string;
  store: CertStore;
  challenges: Challenges;
  log: Logger;
  accountKey: () => Promise<Buffer>;
}

/** acme-client (and axios under it) is loaded by the first order, not by every serve. */
function acmeClient(): Promise<typeof import('./acme-client.js')> {
  return import('./acme-client.js');
}

/** setTimeout's limit (24.8 days): longer waits are taken in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

class AcmeOrder {
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;
  #closed = false;
  #s: OrderStatus;
  #nextAt: number | null = null;
  /** A forced renewal failed: its retries are forced too, until one succeeds. */
  #forced = false;

  constructor(
    readonly id: Role,
    readonly hosts: readonly string[],
    readonly deps: Deps,
  ) {
    this.#s = { id, hosts: [...hosts], skipped: [], certificate: null, state: 'none', nextRenewal: null, lastRenewal: null, lastError: null, lastErrorAt: null, failures: 0 };
  }

  get cert(): Certificate | undefined {
    return this.deps.store.acme(this.id);
  }

  status(): OrderStatus {
    const c = this.cert;
    return { ...this.#s, certificate: c ? certInfo(c) : null, nextRenewal: this.#nextAt === null ? null : new Date(this.#nextAt).toISOString() };
  }

  load(): void {
    const { cert, error } = readCertificate(this.deps.root, this.id);
    if (error) this.deps.log.warn({ event: 'tls-cert-unreadable', order: this.id, error }, `ignoring ${this.id} certificate on disk: ${error}`);
    if (cert) {
      this.deps.store.setAcme(this.id, cert);
      this.#s.state = 'valid';
    }
  }

  /** Whether the certificate in hand covers `hosts` and is not yet due. */
  #fresh(hosts: readonly string[], now: number): boolean {
    const c = this.cert;
    return c !== undefined && hosts.every((h) => c.names.some((n) => covers(n, h))) && now < renewAt(c);
  }

  schedule(delayMs?: number): void {
    if (this.#closed) return;
    if (this.#timer) clearTimeout(this.#timer);
    const now = Date.now();
    const c = this.cert;
    const at = delayMs !== undefined ? now + delayMs : c && this.hosts.every((h) => c.names.some((n) => covers(n, h))) ? renewAt(c) : now;
    this.#nextAt = at;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      if (Date.now() < at - 1000) return this.schedule(at - Date.now());
      this.run(this.#forced).catch(() => {});
    }, Math.min(Math.max(0, at - now), MAX_TIMER_MS));
    this.#timer.unref();
  }

  /** Obtains or renews now (force: even when the certificate in hand is fresh). Rejects with BG_TLS when it fails. */
  run(force: boolean): Promise<void> {
    this.#running ??= this.#attempt(force).finally(() => {
      this.#running = null;
    });
    return this.#running;
  }

  async #attempt(force: boolean): Promise<void> {
    const { log } = this.deps;
    const s = this.#s;
    if (force) this.#forced = true;
    try {
      const { ok, skipped } = await resolvable(this.hosts, this.deps.acme.dnsServers);
      s.skipped = skipped;
      for (const k of skipped) {
        log.warn({ event: 'acme-skip', order: this.id, host: k.host, reason: k.reason }, `not asking the CA for ${k.host}: ${k.reason}`);
      }
      if (ok.length === 0) {
        throw new BgError('BG_TLS', `not asking the CA for ${this.id} hosts: none resolves here (${skipped.map((k) => `${k.host}: ${k.reason}`).join('; ')})`);
      }
      if (!force && this.#fresh(ok, Date.now())) {
        this.schedule();
        return;
      }
      const type: ChallengeType =
        this.deps.acme.challenge === 'auto' ? (s.failures % 2 === 0 ? 'http-01' : 'tls-alpn-01') : this.deps.acme.challenge;
      s.state = 'obtaining';
      log.info({ event: 'acme-order', order: this.id, hosts: ok, challenge: type }, `asking the CA for a certificate for ${ok.join(', ')} (${type})`);
      const { order } = await acmeClient();
      const issued = await order({ acme: this.deps.acme, accountKey: await this.deps.accountKey(), hosts: ok, type, challenges: this.deps.challenges, alpnKeyType: () => this.deps.store.challengeKeyType });
      if (this.#closed) return;
      const cert = writeCertificate(this.deps.root, this.id, issued.key, issued.cert);
      // One assignment: the next handshake gets it, open connections keep theirs.
      this.deps.store.setAcme(this.id, cert);
      this.#forced = false;
      Object.assign(s, { state: 'valid', failures: 0, lastError: null, lastErrorAt: null, lastRenewal: new Date().toISOString() });
      log.info(
        { event: 'acme-obtained', order: this.id, names: cert.names, notAfter: cert.notAfter.toISOString(), serial: cert.serial },
        `certificate for ${cert.names.join(', ')} obtained, valid until ${cert.notAfter.toISOString()}`,
      );
      // Hosts that did not resolve are tried again well before the renewal.
      this.schedule(skipped.length > 0 ? Math.min(renewAt(cert) - Date.now(), backoffMs(1, cert, true)) : undefined);
    } catch (err) {
      if (this.#closed) return;
      s.failures++;
      s.lastError = (err as Error).message;
      s.lastErrorAt = new Date().toISOString();
      s.state = this.cert ? 'valid' : 'failed';
      const retry = backoffMs(s.failures, this.cert ?? null);
      const still = this.cert ? `still serving the certificate valid until ${this.cert.notAfter.toISOString()}` : 'no certificate for these hosts yet';
      log.error(
        { event: 'acme-failed', order: this.id, failures: s.failures, error: s.lastError, retryInMs: retry },
        `certificate ${this.cert ? 'renewal' : 'order'} for ${this.hosts.join(', ')} failed (${s.failures} in a row): ${s.lastError}; ${still}; retrying in ${Math.round(retry / 1000)} s`,
      );
      this.schedule(retry);
      throw err;
    }
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }
}

/** Which hosts resolve (A or AAAA) through the configured DNS servers, else the system's resolver. */
async function resolvable(hosts: readonly string[], servers: readonly string[]): Promise<{ ok: string[]; skipped: Array<{ host: string; reason: string }> }> {
  let resolver: dns.Resolver | null = null;
  if (servers.length > 0) {
    resolver = new dns.Resolver({ timeout: 2000, tries: 2 });
    resolver.setServers([...servers]);
  }
  const ok: string[] = [];
  const skipped: Array<{ host: string; reason: string }> = [];
  await Promise.all(
    hosts.map(async (h) => {
      try {
        if (resolver) {
          const r = resolver;
          const [a, aaaa] = await Promise.allSettled([r.resolve4(h), r.resolve6(h)]);
          if (a.status === 'rejected' && aaaa.status === 'rejected') throw a.reason;
        } else await dns.lookup(h, { all: true });
        ok.push(h);
      } catch (err) {
        skipped.push({ host: h, reason: `does not resolve (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})` });
      }
    }),
  );
  // Keep the configured order: the first host is the certificate's common name.
  ok.sort((a, b) => hosts.indexOf(a) - hosts.indexOf(b));
  return { ok, skipped };
}

export class AcmeManager {
  readonly #orders: AcmeOrder[];
  #accountKey: Promise<Buffer> | null = null;

  constructor(opts: { acme: AcmeConfig; root: string; hosts: Record<Role, readonly string[]>; store: CertStore; challenges: Challenges; log: Logger }) {
    const deps: Deps = { ...opts, log: opts.log, accountKey: () => this.#account(opts.root) };
    this.#orders = (['live', 'next'] as const)
      .map((id) => new AcmeOrder(id, opts.hosts[id].filter((h) => !opts.store.ownCovers(h)), deps))
      .filter((o) => o.hosts.length > 0);
  }

  #account(root: string): Promise<Buffer> {
    this.#accountKey ??= (async () => {
      const existing = readAccountKey(root);
      if (existing) return existing;
      const key = await (await acmeClient()).createAccountKey();
      writeAccountKey(root, key);
      return key;
    })();
    return this.#accountKey;
  }

  /** Loads the certificates obtained before and schedules each order (at once when one is missing or due). */
  start(): void {
    for (const o of this.#orders) {
      o.load();
      o.schedule();
    }
  }

  /** Renews every order now; force: even when fresh. Resolves with each order's status; failures are in them. */
  async renew(force: boolean): Promise<OrderStatus[]> {
    await Promise.allSettled(this.#orders.map((o) => o.run(force)));
    return this.status();
  }

  status(): OrderStatus[] {
    return this.#orders.map((o) => o.status());
  }

  close(): void {
    for (const o of this.#orders) o.close();
  }
}
