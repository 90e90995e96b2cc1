// One ACME order, start to finish, with acme-client: the account (one key under
// ROOT/tls/acme/), the challenge (HTTP-01 answered by the AcmeChallengeGate, TLS-ALPN-01
// by the TLS listener), the certificate. Only this file imports acme-client.
import { readFileSync } from 'node:fs';
import https from 'node:https';
import tls from 'node:tls';
import acme from 'acme-client';
import type { AcmeConfig } from '../config.js';
import { BgError } from '../errors.js';
import type { Challenges } from './challenges.js';

export type ChallengeType = 'http-01' | 'tls-alpn-01';

/** Agents for directories with their own CA bundle (tls.acme.caBundle), by origin. */
const AGENTS = new Map<string, https.Agent>();
let intercepting = false;

function trust(directory: string, caBundle: string | null): void {
  const origin = new URL(directory).origin;
  if (caBundle === null) {
    AGENTS.delete(origin);
    return;
  }
  let ca: Buffer;
  try {
    ca = readFileSync(caBundle);
  } catch (err) {
    throw new BgError('BG_TLS', `tls.acme.caBundle: cannot read ${caBundle} (${(err as NodeJS.ErrnoException).code ?? err})`);
  }
  AGENTS.set(origin, new https.Agent({ ca, keepAlive: true }));
  if (intercepting) return;
  intercepting = true;
  // acme-client shares one axios instance: pick the agent by the request's origin.
  acme.axios.interceptors.request.use((cfg) => {
    const agent = cfg.url ? AGENTS.get(new URL(cfg.url).origin) : undefined;
    if (agent) cfg.httpsAgent = agent;
    return cfg;
  });
}

// acme-client retries a request that got no answer 5 times over 75 s; renewal has its own
// retry with backoff (renewal.ts), so one quick retry is enough here.
const settings = (acme.axios.defaults as unknown as { acmeSettings: { retryMaxAttempts: number; retryDefaultDelay: number } }).acmeSettings;
settings.retryMaxAttempts = 1;
settings.retryDefaultDelay = 1;
acme.axios.defaults.timeout = 30_000;

export function createAccountKey(): Promise<Buffer> {
  return acme.crypto.createPrivateEcdsaKey('P-256');
}

export interface Issued {
  /** PEM: the private key. */
  key: string;
  /** PEM: the leaf, then the chain. */
  cert: string;
}

/**
 * Orders a certificate for `hosts` (the first is its common name) and answers its
 * challenges of `type`; resolves with the key and chain, or throws BG_TLS with the CA's reason.
 */
export async function order(opts: {
  acme: AcmeConfig;
  accountKey: Buffer;
  hosts: readonly string[];
  type: ChallengeType;
  challenges: Challenges;
  /** The key type of the certificate served without SNI: the ALPN certificate must have it too (see CertStore). */
  alpnKeyType: () => 'ec' | 'rsa';
}): Promise<Issued> {
  const { hosts, challenges } = opts;
  trust(opts.acme.directory, opts.acme.caBundle);
  const client = new acme.Client({
    directoryUrl: opts.acme.directory,
    accountKey: opts.accountKey,
    // Polls of an order or challenge: Let's Encrypt answers within seconds; a CA that stops
    // answering mid-order fails it within ~30 s (then renewal's own backoff takes over).
    backoffAttempts: 10,
    backoffMin: 250,
    backoffMax: 5_000,
  });
  const [key, csr] = await acme.crypto.createCsr({ commonName: hosts[0]!, altNames: [...hosts] }, await acme.crypto.createPrivateEcdsaKey('P-256'));
  try {
    const cert = await client.auto({
      csr,
      ...(opts.acme.email ? { email: opts.acme.email } : {}),
      termsOfServiceAgreed: true,
      challengePriority: [opts.type],
      // The hosts were checked to resolve before (acme-client's own check would ask port 80 of each).
      skipChallengeVerification: true,
      challengeCreateFn: async (authz, challenge, keyAuthorization) => {
        const type: string = challenge.type;
        if (challenge.type === 'http-01') challenges.setHttp(challenge.token, keyAuthorization);
        else if (type === 'tls-alpn-01') {
          const alpnKey = opts.alpnKeyType() === 'rsa' ? await acme.crypto.createPrivateRsaKey(2048) : await acme.crypto.createPrivateEcdsaKey('P-256');
          const [k, c] = await acme.crypto.createAlpnCertificate(authz, keyAuthorization, alpnKey);
          challenges.setAlpn(authz.identifier.value, tls.createSecureContext({ key: k, cert: c, minVersion: 'TLSv1.2' }));
        } else throw new Error(`unexpected challenge type ${challenge.type}`);
      },
      challengeRemoveFn: async (authz, challenge) => {
        if (challenge.type === 'http-01') challenges.setHttp(challenge.token, null);
        else challenges.setAlpn(authz.identifier.value, null);
      },
    });
    return { key: key.toString(), cert };
  } catch (err) {
    // acme-client turns a request that got no answer into a TypeError about `config`
    // (its retry interceptor reads the missing response): ask the directory to say why.
    const why = err instanceof TypeError ? await unreachable(opts.acme.directory) : null;
    throw new BgError('BG_TLS', `ACME ${opts.type} order for ${hosts.join(', ')} failed: ${why ?? describeAcmeError(err)}`, { cause: err });
  }
}

/** Why the directory does not answer (e.g. "cannot reach the CA at URL: ECONNREFUSED"), or null when it does. */
function unreachable(directory: string): Promise<string | null> {
  return new Promise((resolve) => {
    const agent = AGENTS.get(new URL(directory).origin);
    const req = https.get(directory, { ...(agent ? { agent } : {}), timeout: 10_000 }, (res) => {
      res.resume();
      resolve(null);
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    req.on('error', (e: NodeJS.ErrnoException) => resolve(`cannot reach the CA at ${directory}: ${e.code ?? e.message}`));
  });
}

function describeAcmeError(err: unknown): string {
  const e = err as { code?: string; message?: string; response?: { status?: number } };
  const msg = (e.message ?? String(err)).split('\n')[0]!;
  return e.code && !msg.includes(e.code) ? `${msg} (${e.code})` : msg;
}
