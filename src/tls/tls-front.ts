// HTTPS on the front door, as one object owned by Bgproxy: the certificates served (own
// and ACME), the challenges in progress, the request gates, the TLS listener's server,
// and what `bgproxy certs` and status report.
import type tls from 'node:tls';
import type { Config, TlsConfig } from '../config.js';
import type { Logger } from '../log.js';
import type { Gate } from '../proxy/gate.js';
import { AcmeManager, type CertInfo, certInfo, type OrderStatus } from './acme.js';
import { CertStore } from './cert-store.js';
import { type Certificate, loadCertificate } from './certificate.js';
import { Challenges } from './challenges.js';
import { AcmeChallengeGate, RedirectGate, type RedirectSettings, SniHostGate } from './gates.js';
import { createTlsServer, type TlsCounters } from './server.js';

export interface OwnCertStatus extends CertInfo {
  cert: string;
  key: string;
}

export interface CertsStatus {
  listen: string | null;
  own: OwnCertStatus[];
  /** null when tls.acme is not configured. */
  acme: { directory: string; orders: OrderStatus[] } | null;
  handshakeErrors: number;
  alpnChallenges: number;
}

/** Loads every own certificate; throws BG_TLS naming the first bad file (then nothing changes). */
function loadOwn(tlsConfig: TlsConfig): Certificate[] {
  return tlsConfig.certificates.map((c) => loadCertificate(c.cert, c.key));
}

export class TlsFront {
  readonly store = new CertStore();
  readonly challenges = new Challenges();
  /** Asked first, in this order, for every request and upgrade. */
  readonly gates: readonly Gate[];
  readonly #redirect: RedirectGate;
  #config: Readonly<Config>;
  #acme: AcmeManager | null = null;
  #counters: TlsCounters | null = null;
  readonly #log: Logger;
  /** "host:port" the TLS listener is bound to, once it is. */
  listenAddress: string | null = null;
  /** The https port redirects name: tls.listen's, then the one bound (port 0 resolved). */
  #httpsPort: number;

  /** Throws BG_TLS when an own certificate cannot be loaded. */
  constructor(config: Readonly<Config>, log: Logger) {
    this.#config = config;
    this.#log = log.child({ component: 'tls' });
    const t = this.#tls;
    this.store.setOwn(loadOwn(t));
    this.#httpsPort = t.listen.port || 443;
    this.#redirect = new RedirectGate(this.store, this.#redirectSettings());
    this.gates = [new AcmeChallengeGate(this.challenges), new SniHostGate(), this.#redirect];
  }

  #redirectSettings(): RedirectSettings {
    const t = this.#tls;
    return { redirectHttp: t.redirectHttp, httpsPort: this.#httpsPort, hstsMaxAge: t.hstsMaxAge };
  }

  get #tls(): TlsConfig {
    // Bgproxy creates a TlsFront only for a config with tls, and a reload cannot remove it.
    return this.#config.tls!;
  }

  /** Loads the certificates obtained before and starts obtaining and renewing (background). */
  start(): void {
    const t = this.#tls;
    if (!t.acme && t.certificates.length === 0) {
      this.#log.warn({ event: 'tls-no-certificate' }, 'tls has neither certificates nor acme: every TLS handshake will fail');
    }
    this.#startAcme();
  }

  #startAcme(): void {
    // Certificates of orders that no longer exist (a host list emptied) are not served;
    // the others are loaded again from disk at once, in the same tick.
    for (const id of ['live', 'next'] as const) this.store.setAcme(id, null);
    const a = this.#tls.acme;
    if (!a) return;
    this.#acme = new AcmeManager({ acme: a, root: this.#config.root, hosts: this.#config.hosts, store: this.store, challenges: this.challenges, log: this.#log });
    this.#acme.start();
  }

  /** The tls.Server for the TLS listener; each secure connection goes to onConnection, h2 ones to onH2. */
  createServer(onConnection: (socket: tls.TLSSocket) => void, onH2?: (socket: tls.TLSSocket) => void): tls.Server {
    const { server, counters } = createTlsServer({
      store: this.store,
      challenges: this.challenges,
      handshakeTimeoutMs: this.#tls.handshakeTimeoutMs,
      onConnection,
      http2: () => this.#tls.http2,
      ...(onH2 ? { onH2 } : {}),
    });
    this.#counters = counters;
    return server;
  }

  /** The bound port goes into redirects (443 is left out of the Location). */
  setListenAddress(address: string, port: number): void {
    this.listenAddress = address;
    this.#httpsPort = port;
    this.#redirect.configure(this.#redirectSettings());
  }

  /**
   * Checks what a reload would apply (own certificates are read and checked now) and
   * returns the function that applies it; throws BG_TLS, changing nothing, when it cannot.
   */
  prepare(next: Readonly<Config>): { apply: () => void; renewed: string[] } {
    const t = next.tls!;
    const own = loadOwn(t);
    const before = new Set(this.store.own.map((c) => c.serial));
    const renewed = own.filter((c) => !before.has(c.serial)).flatMap((c) => c.names);
    const apply = (): void => {
      const before = this.#acmeKey();
      this.#config = next;
      this.store.setOwn(own);
      // tls.listen only changes with a restart: the port stays the one bound.
      this.#redirect.configure(this.#redirectSettings());
      // New hosts (or own certificates now covering some) change what ACME orders.
      if (this.#acmeKey() !== before) {
        this.#acme?.close();
        this.#acme = null;
        this.#startAcme();
      }
    };
    return { apply, renewed };
  }

  /** What the ACME orders depend on: the hosts, tls.acme, the names own certificates cover. */
  #acmeKey(): string {
    return JSON.stringify([this.#config.hosts, this.#tls.acme, this.store.own.map((c) => c.names)]);
  }

  /** Obtains or renews the ACME certificates now (force: also those not due yet). */
  async renew(force: boolean): Promise<CertsStatus> {
    if (this.#acme) await this.#acme.renew(force);
    return this.status();
  }

  status(): CertsStatus {
    const t = this.#tls;
    return {
      listen: this.listenAddress,
      own: this.store.own.map((c, i) => ({ ...certInfo(c), cert: t.certificates[i]?.cert ?? c.source, key: t.certificates[i]?.key ?? '' })),
      acme: t.acme ? { directory: t.acme.directory, orders: this.#acme?.status() ?? [] } : null,
      handshakeErrors: this.#counters?.handshakeErrors ?? 0,
      alpnChallenges: this.#counters?.alpnChallenges ?? 0,
    };
  }

  close(): void {
    this.#acme?.close();
  }
}
