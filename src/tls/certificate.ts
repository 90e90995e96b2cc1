// One certificate with its key: read, checked as a pair, and described (names, issuer,
// validity) once, so a handshake only looks up a ready SecureContext.
import { createPrivateKey, randomBytes, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import { BgError } from '../errors.js';

export interface Certificate {
  /** DNS names it covers, lower case ("*.example.com" for a wildcard). */
  names: string[];
  issuer: string;
  notBefore: Date;
  notAfter: Date;
  serial: string;
  /** Where it came from: "acme" or the cert file's path. */
  source: string;
  context: tls.SecureContext;
  /** "ec", "rsa", …: OpenSSL keeps one certificate per key type in a handshake (see CertStore). */
  keyType: string;
  /** For the server's own (default) context, which Node sets from PEM. */
  pem: { cert: string | Buffer; key: string | Buffer };
}

/**
 * Session tickets are encrypted with the keys of the context that issued them; one set of
 * keys for every context (and the server's own) lets a client resume whichever certificate
 * SNI picked. Per process: a restart of serve starts new sessions, as nginx's do.
 */
const TICKET_KEYS = randomBytes(48);

export function ticketKeys(): Buffer {
  return TICKET_KEYS;
}

function firstLine(err: unknown): string {
  return String((err as Error)?.message ?? err).split('\n')[0]!;
}

/** The DNS names of a certificate: its subjectAltName DNS entries, else its CN. */
function dnsNames(x: X509Certificate): string[] {
  const san = x.subjectAltName;
  if (san) {
    const names = san
      .split(', ')
      .filter((e) => e.startsWith('DNS:'))
      .map((e) => e.slice(4).toLowerCase());
    if (names.length > 0) return names;
  }
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(x.subject)?.[1];
  return cn ? [cn.toLowerCase()] : [];
}

/**
 * Checks a PEM chain and key as a pair and builds its context. Throws BG_TLS with one line
 * naming the file at fault.
 */
export function certificateFromPem(certPem: string | Buffer, keyPem: string | Buffer, where: { cert: string; key: string; source: string }): Certificate {
  let x: X509Certificate;
  try {
    x = new X509Certificate(certPem);
  } catch (err) {
    throw new BgError('BG_TLS', `${where.cert}: not a PEM certificate (${firstLine(err)})`);
  }
  let key: ReturnType<typeof createPrivateKey>;
  try {
    key = createPrivateKey(keyPem);
  } catch (err) {
    throw new BgError('BG_TLS', `${where.key}: not a PEM private key (${firstLine(err)})`);
  }
  if (!x.checkPrivateKey(key)) throw new BgError('BG_TLS', `${where.key}: this key does not belong to the certificate in ${where.cert}`);
  const names = dnsNames(x);
  if (names.length === 0) throw new BgError('BG_TLS', `${where.cert}: the certificate names no DNS host`);
  let context: tls.SecureContext;
  try {
    context = tls.createSecureContext({ cert: certPem, key: keyPem, minVersion: 'TLSv1.2', ticketKeys: TICKET_KEYS });
  } catch (err) {
    throw new BgError('BG_TLS', `${where.cert}: ${firstLine(err)}`);
  }
  return {
    names,
    issuer: /(?:^|\n)(?:CN|O)=([^\n]+)/.exec(x.issuer)?.[1] ?? x.issuer,
    notBefore: new Date(x.validFrom),
    notAfter: new Date(x.validTo),
    serial: x.serialNumber,
    source: where.source,
    context,
    keyType: key.asymmetricKeyType ?? 'unknown',
    pem: { cert: certPem, key: keyPem },
  };
}

/** Reads a cert file (leaf first, then its chain) and its key file. */
export function loadCertificate(certFile: string, keyFile: string, source = certFile): Certificate {
  const read = (file: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw new BgError('BG_TLS', `${file}: cannot read (${e.code ?? e.message})`);
    }
  };
  return certificateFromPem(read(certFile), read(keyFile), { cert: certFile, key: keyFile, source });
}

/** Whether `name` (a certificate name, maybe "*.x") covers `host`; a wildcard covers one label. */
export function covers(name: string, host: string): boolean {
  if (name === host) return true;
  if (!name.startsWith('*.')) return false;
  const dot = host.indexOf('.');
  return dot > 0 && host.slice(dot + 1) === name.slice(2);
}
