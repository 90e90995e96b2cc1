// TLS test material made with the openssl CLI in a temp dir (a CA, certificates it
// signs), and an HTTPS client that reports what the handshake gave.
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import tls from 'node:tls';
import { tempDir } from './root.js';

type T = { teardown(fn: () => unknown): void };

export interface TestCa {
  dir: string;
  cert: string;
  key: string;
  pem: Buffer;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

export function makeCa(t: T, name = 'bgproxy test CA'): TestCa {
  const dir = tempDir(t, 'bg-ca-');
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', `/CN=${name}`], dir);
  return { dir, cert: path.join(dir, 'ca.pem'), key: path.join(dir, 'ca.key'), pem: readFileSync(path.join(dir, 'ca.pem')) };
}

let serial = 0;

/** A certificate for `names` signed by `ca`; files `<file>.pem` and `<file>.key` in the CA's dir. */
export function issueCert(ca: TestCa, file: string, names: string[], days = 1, keyType: 'ec' | 'rsa' = 'ec'): { cert: string; key: string } {
  const key = path.join(ca.dir, `${file}.key`);
  const csr = path.join(ca.dir, `${file}.csr`);
  const cert = path.join(ca.dir, `${file}.pem`);
  const ext = path.join(ca.dir, `${file}.ext`);
  writeFileSync(ext, `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}\n`);
  const newkey = keyType === 'rsa' ? ['-newkey', 'rsa:2048'] : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'];
  openssl(['req', ...newkey, '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${names[0]}`], ca.dir);
  serial++;
  openssl(['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-set_serial', String(Date.now() * 100 + serial), '-days', String(days), '-extfile', ext, '-out', cert], ca.dir);
  return { cert, key };
}

export interface HttpsResult {
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
  /** The serial of the certificate the server presented. */
  serial: string;
  alpn: string | false;
  reused: boolean;
}

export interface HttpsOptions {
  port: number;
  /** Host header. */
  host: string;
  /** SNI (default: host; false: none). */
  servername?: string | false;
  ca: Buffer | Buffer[];
  path?: string;
  method?: string;
  agent?: https.Agent | false;
  session?: Buffer;
  rejectUnauthorized?: boolean;
}

export function httpsRequest(o: HttpsOptions): Promise<HttpsResult> {
  return new Promise((resolve, reject) => {
    const servername = o.servername === undefined ? o.host : o.servername;
    const options: https.RequestOptions & tls.ConnectionOptions = {
        host: '127.0.0.1',
        port: o.port,
        path: o.path ?? '/',
        method: o.method ?? 'GET',
        headers: { host: o.host },
        ca: o.ca,
        agent: o.agent ?? false,
        rejectUnauthorized: o.rejectUnauthorized ?? true,
        ALPNProtocols: ['http/1.1'],
        servername: servername === false ? '' : servername,
        // Node checks the certificate against servername; without SNI, check against Host.
        // (Only then: Node 22's agents do not reuse a socket across different functions.)
        ...(servername === false ? { checkServerIdentity: (_h: string, cert: tls.PeerCertificate) => tls.checkServerIdentity(o.host, cert) } : {}),
        ...(o.session ? { session: o.session } : {}),
      };
    const req = https.request(
      options,
      (res) => {
        const socket = res.socket as tls.TLSSocket;
        const serialNo = socket.getPeerCertificate().serialNumber ?? '';
        const alpn = socket.alpnProtocol ?? false;
        const reused = socket.isSessionReused();
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers, serial: serialNo.toUpperCase(), alpn, reused }));
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error('client timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** The serial (upper-case hex) of a PEM certificate file. */
export function serialOf(certFile: string): string {
  return new X509Certificate(readFileSync(certFile)).serialNumber.toUpperCase();
}
