// ROOT/tls/ on disk: a 0700 directory; the ACME account key and each obtained certificate
// (key and chain in one file, so one rename(2) replaces both) written 0600, atomically.
import { chmodSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../layout/atomic.js';
import { type Certificate, certificateFromPem } from './certificate.js';

export function tlsDir(root: string): string {
  const dir = path.join(root, 'tls');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // An existing directory keeps its mode on mkdir: make it ours.
  chmodSync(dir, 0o700);
  return dir;
}

export function readAccountKey(root: string): Buffer | null {
  const file = path.join(tlsDir(root), 'account.key');
  return existsSync(file) ? readFileSync(file) : null;
}

export function writeAccountKey(root: string, key: Buffer): void {
  writeFileAtomic(path.join(tlsDir(root), 'account.key'), key, 0o600);
}

export function certFile(root: string, id: string): string {
  return path.join(tlsDir(root), `${id}.pem`);
}

export function writeCertificate(root: string, id: string, keyPem: string, certPem: string): Certificate {
  const c = certificateFromPem(certPem, keyPem, { cert: certFile(root, id), key: certFile(root, id), source: 'acme' });
  writeFileAtomic(certFile(root, id), `${keyPem.trim()}\n${certPem.trim()}\n`, 0o600);
  return c;
}

const KEY_BLOCK = /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]+?-----END [A-Z ]*PRIVATE KEY-----/;
const CERT_BLOCKS = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The certificate obtained earlier for `id`, or null when there is none (or it is unreadable: obtain a new one). */
export function readCertificate(root: string, id: string): { cert: Certificate | null; error?: string } {
  const file = certFile(root, id);
  if (!existsSync(file)) return { cert: null };
  try {
    const text = readFileSync(file, 'utf8');
    const key = KEY_BLOCK.exec(text)?.[0] ?? '';
    const chain = (text.match(CERT_BLOCKS) ?? []).join('\n');
    return { cert: certificateFromPem(chain, key, { cert: file, key: file, source: 'acme' }) };
  } catch (err) {
    return { cert: null, error: (err as Error).message };
  }
}
