// The TLS listener: terminates TLS (1.2+, ALPN h2 and http/1.1, session tickets), picks the
// certificate by SNI from the CertStore on every handshake, answers TLS-ALPN-01 handshakes
// of the CA, and hands every other secure socket to the HTTP machinery through one call.
import type { Socket } from 'node:net';
import tls from 'node:tls';
import type { CertStore } from './cert-store.js';
import { type Certificate, ticketKeys } from './certificate.js';
import type { Challenges } from './challenges.js';

export const ACME_TLS_ALPN = 'acme-tls/1';

export interface TlsServerOptions {
  store: CertStore;
  challenges: Challenges;
  handshakeTimeoutMs: number;
  /** Takes a secure socket (what the plain listener does with a TCP one). */
  onConnection: (socket: tls.TLSSocket) => void;
  /** Whether ALPN offers h2 (asked on every handshake, so a reload applies to new connections). */
  http2?: () => boolean;
  /** Takes a secure socket whose ALPN protocol is h2. */
  onH2?: (socket: tls.TLSSocket) => void;
}

export interface TlsCounters {
  /** Handshakes that failed: garbage, unknown protocol, timeout, reset. */
  handshakeErrors: number;
  /** The CA's TLS-ALPN-01 validation handshakes answered. */
  alpnChallenges: number;
}

export function createTlsServer(opts: TlsServerOptions): { server: tls.Server; counters: TlsCounters } {
  const { store, challenges } = opts;
  const counters: TlsCounters = { handshakeErrors: 0, alpnChallenges: 0 };
  // OpenSSL asks ALPN before SNI, but Node runs the SNI callback later, so the handshakes
  // of two validations can interleave: the ALPN callback counts the CA's "acme-tls/1"
  // handshakes per name, the SNI callback serves that name's challenge certificate to as
  // many. Only while a challenge for the name is pending (seconds) could an ordinary client's
  // handshake for it in between take one: it fails once, the CA's order is retried.
  const alpnPending = new Map<string, number>();
  const server = tls.createServer({
    ...serverContext(store.defaultCertificate),
    handshakeTimeout: opts.handshakeTimeoutMs,
    noDelay: true,
    ALPNCallback: ({ servername, protocols }) => {
      if (servername && challenges.pendingAlpn > 0 && protocols.includes(ACME_TLS_ALPN)) {
        const name = servername.toLowerCase();
        if (challenges.alpn(name)) {
          alpnPending.set(name, (alpnPending.get(name) ?? 0) + 1);
          return ACME_TLS_ALPN;
        }
      }
      // The client's order is ignored: h2 when offered (and on), as nginx and Caddy prefer it.
      if (opts.onH2 && opts.http2?.() && protocols.includes('h2')) return 'h2';
      // Anything else (h2 alone with http2 off, …) gets the no_application_protocol alert.
      return protocols.includes('http/1.1') ? 'http/1.1' : undefined;
    },
    SNICallback: (servername, cb) => {
      const name = servername.toLowerCase();
      if (alpnPending.size > 0) {
        const n = alpnPending.get(name) ?? 0;
        if (n > 0) {
          if (n === 1) alpnPending.delete(name);
          else alpnPending.set(name, n - 1);
          const ctx = challenges.alpn(name);
          if (ctx) return cb(null, ctx);
        }
      }
      // An unknown name gets the default certificate (the client will refuse it), as nginx does.
      cb(null, store.lookup(name)?.context);
    },
  });
  store.onDefault = (c) => server.setSecureContext(serverContext(c));
  server.on('secureConnection', (socket: tls.TLSSocket) => {
    if (socket.alpnProtocol === ACME_TLS_ALPN) {
      // The handshake was the answer; the CA sends nothing more.
      counters.alpnChallenges++;
      socket.on('error', () => socket.destroy());
      socket.end();
      return;
    }
    if (socket.alpnProtocol === 'h2' && opts.onH2) opts.onH2(socket);
    else opts.onConnection(socket);
  });
  server.on('tlsClientError', (_err: Error, socket: tls.TLSSocket) => {
    counters.handshakeErrors++;
    socket.destroy();
  });
  // A reset before the TLS layer wraps the socket must not reach the process.
  server.on('connection', (socket: Socket) => {
    socket.on('error', () => socket.destroy());
  });
  return { server, counters };
}

/** The server's own context: TLS 1.2+, the shared ticket keys, the default certificate (if any). */
function serverContext(def: Certificate | null): tls.SecureContextOptions {
  return { minVersion: 'TLSv1.2', ticketKeys: ticketKeys(), ...(def ? { cert: def.pem.cert, key: def.pem.key } : {}) };
}
