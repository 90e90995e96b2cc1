// The ACME challenges in progress: HTTP-01 tokens answered on the plain listener, and
// TLS-ALPN-01 certificates served to the CA's "acme-tls/1" handshakes on the TLS one.
import type tls from 'node:tls';

export class Challenges {
  readonly #http = new Map<string, string>();
  readonly #alpn = new Map<string, tls.SecureContext>();

  http(token: string): string | undefined {
    return this.#http.get(token);
  }

  setHttp(token: string, keyAuthorization: string | null): void {
    if (keyAuthorization === null) this.#http.delete(token);
    else this.#http.set(token, keyAuthorization);
  }

  alpn(host: string): tls.SecureContext | undefined {
    return this.#alpn.get(host);
  }

  setAlpn(host: string, ctx: tls.SecureContext | null): void {
    if (ctx === null) this.#alpn.delete(host);
    else this.#alpn.set(host, ctx);
  }

  get pendingAlpn(): number {
    return this.#alpn.size;
  }
}
