// The TLS policies on the request path (see proxy/gate.ts), asked in this order before
// anything else: the ACME HTTP-01 answer, the SNI/Host agreement (421), the redirect from
// http to https (308), and HSTS. Each returns null at once when it has nothing to say.
import { isIP } from 'node:net';
import type { Answer, Forward, Gate, RequestView, Verdict } from '../proxy/gate.js';
import type { CertStore } from './cert-store.js';
import type { Challenges } from './challenges.js';

export const CHALLENGE_PREFIX = '/.well-known/acme-challenge/';

function isChallengePath(path: string): boolean {
  // charCodeAt first: the common request pays one comparison.
  return path.charCodeAt(1) === 46 /* . */ && path.startsWith(CHALLENGE_PREFIX);
}

/** Answers the CA's HTTP-01 request for a token of an order in progress; other tokens go to the app. */
export class AcmeChallengeGate implements Gate {
  constructor(readonly challenges: Challenges) {}

  check(req: RequestView): Verdict | null {
    if (!isChallengePath(req.path)) return null;
    const keyAuth = this.challenges.http(req.path.slice(CHALLENGE_PREFIX.length));
    if (keyAuth === undefined) return null;
    return { kind: 'answer', status: 200, headers: [['content-type', 'application/octet-stream']], body: keyAuth };
  }
}

const MISDIRECTED: Answer = {
  kind: 'answer',
  status: 421,
  body: 'bgproxy: the Host header names another host than the TLS server name (SNI)\n',
};

/**
 * Over TLS, the certificate was chosen by SNI: a request for another Host on that
 * connection was not authenticated for it (RFC 9110 §15.5.20). Without SNI the client took
 * the default certificate as it is, and Host decides.
 */
export class SniHostGate implements Gate {
  check(req: RequestView): Verdict | null {
    const tls = req.tls;
    if (tls === null || tls.servername === null) return null;
    const sni = tls.servername;
    if (sni === req.host) return null;
    if (sni.length === req.host.length && sni.toLowerCase() === req.host) return null;
    // An IP address is no server name (RFC 6066 §3), though some clients (wrk) send one:
    // they got the default certificate, as without SNI.
    if (isIP(sni) !== 0) return null;
    return MISDIRECTED;
  }
}

export interface RedirectSettings {
  redirectHttp: boolean;
  /** The public https port in the Location (443 is left out). */
  httpsPort: number;
  hstsMaxAge: number;
}

/** 308 from http to https for hosts with a certificate; HSTS on https responses when asked for. */
export class RedirectGate implements Gate {
  #s: RedirectSettings;
  #hsts: Forward | null;

  constructor(
    readonly store: CertStore,
    settings: RedirectSettings,
  ) {
    this.#s = settings;
    this.#hsts = hstsVerdict(settings.hstsMaxAge);
  }

  configure(settings: RedirectSettings): void {
    this.#s = settings;
    this.#hsts = hstsVerdict(settings.hstsMaxAge);
  }

  check(req: RequestView): Verdict | null {
    if (req.tls !== null) return this.#hsts;
    if (!this.#s.redirectHttp || isChallengePath(req.path) || !this.store.has(req.host)) return null;
    // A CDN or load balancer in front that took https already says so: no loop.
    if (req.trustedPeer && req.header('x-forwarded-proto') === 'https') return null;
    const port = this.#s.httpsPort === 443 ? '' : `:${this.#s.httpsPort}`;
    return {
      kind: 'answer',
      status: 308,
      headers: [['location', `https://${req.host}${port}${req.path}`]],
      body: '',
      // The body of a POST is not read: this response ends the connection.
      close: req.method !== 'GET' && req.method !== 'HEAD',
    };
  }
}

function hstsVerdict(maxAge: number): Forward | null {
  return maxAge > 0 ? { kind: 'forward', addResponseHeaders: [['strict-transport-security', `max-age=${maxAge}`]] } : null;
}
