// The certificates being served, by name: the operator's own (tls.certificates) before
// the ones bgproxy obtained (ACME). A handshake asks `lookup(servername)`; swapping a
// certificate is one assignment of the maps, so handshakes in progress and open
// connections keep what they have and the next handshake gets the new one.
import { type Certificate, covers } from './certificate.js';

export class CertStore {
  #own: readonly Certificate[] = [];
  readonly #acme = new Map<string, Certificate>();
  /** Exact names, then "*.suffix" wildcards, rebuilt at every change. */
  #exact = new Map<string, Certificate>();
  #wild = new Map<string, Certificate>();
  /** Served to clients that send no SNI: the first own certificate, else the first obtained one. */
  #default: Certificate | null = null;
  /** Called with the new default certificate (or null: none) when it changes (the server's own context). */
  onDefault: ((c: Certificate | null) => void) | null = null;

  setOwn(list: readonly Certificate[]): void {
    this.#own = list;
    this.#rebuild();
  }

  /** Sets (or with null removes) the certificate obtained for one ACME order ("live", "next"). */
  setAcme(id: string, cert: Certificate | null): void {
    if (cert) this.#acme.set(id, cert);
    else this.#acme.delete(id);
    this.#rebuild();
  }

  acme(id: string): Certificate | undefined {
    return this.#acme.get(id);
  }

  get own(): readonly Certificate[] {
    return this.#own;
  }

  /** Each name served ("*.suffix" for a wildcard) with the certificate a handshake for it gets. */
  served(): Array<[name: string, cert: Certificate]> {
    return [...this.#exact, ...[...this.#wild].map(([k, c]): [string, Certificate] => [`*.${k}`, c])];
  }

  #rebuild(): void {
    const exact = new Map<string, Certificate>();
    const wild = new Map<string, Certificate>();
    // Own certificates win: the operator chose them (an origin or wildcard certificate).
    for (const c of [...this.#own, ...this.#acme.values()]) {
      for (const n of c.names) {
        const m = n.startsWith('*.') ? wild : exact;
        const k = n.startsWith('*.') ? n.slice(2) : n;
        if (!m.has(k)) m.set(k, c);
      }
    }
    this.#exact = exact;
    this.#wild = wild;
    // Node applies the SNI choice with SSL_use_certificate, which fills the slot of that key
    // type and leaves the server's default in its own: an RSA certificate chosen by SNI next
    // to an ECDSA default would lose to it with clients that prefer ECDSA. A default only when
    // every certificate has its key type; otherwise clients without SNI are refused.
    const first = this.#own[0] ?? this.#acme.values().next().value ?? null;
    const all = [...this.#own, ...this.#acme.values()];
    const def = first && all.every((c) => c.keyType === first.keyType) ? first : null;
    if (def !== this.#default) {
      this.#default = def;
      this.onDefault?.(def);
    }
  }

  /** The certificate for an SNI name (lower case), or undefined. */
  lookup(servername: string): Certificate | undefined {
    const c = this.#exact.get(servername);
    if (c) return c;
    const dot = servername.indexOf('.');
    return dot > 0 ? this.#wild.get(servername.slice(dot + 1)) : undefined;
  }

  get defaultCertificate(): Certificate | null {
    return this.#default;
  }

  /** The key type TLS-ALPN-01 certificates must have (the default's, so they replace it in its slot). */
  get challengeKeyType(): 'ec' | 'rsa' {
    return this.#default?.keyType === 'rsa' ? 'rsa' : 'ec';
  }

  /** Whether some certificate covers `host` (redirects to https only for those). */
  has(host: string): boolean {
    return this.lookup(host) !== undefined;
  }

  /** Own certificates that cover `host` (ACME leaves those hosts alone). */
  ownCovers(host: string): boolean {
    return this.#own.some((c) => c.names.some((n) => covers(n, host)));
  }
}
