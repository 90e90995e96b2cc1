// bgproxy certs [--json] | certs renew [--force]: the certificates the running serve
// holds, and renewing them now.
import type { Command } from 'commander';
import { resolveRoot } from '../config.js';
import { controlRequest } from '../control/client.js';
import { BgError } from '../errors.js';
import type { CertsStatus } from '../tls/tls-front.js';
import { table } from './output.js';

function day(iso: string | null | undefined): string {
  return iso ? iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '-';
}

export function formatCerts(s: CertsStatus): string {
  const rows = [['SOURCE', 'HOSTS', 'ISSUER', 'EXPIRES', 'NEXT RENEWAL', 'STATE']];
  const notes: string[] = [];
  for (const c of s.own) rows.push([c.cert, c.names.join(','), c.issuer, day(c.notAfter), '- (own)', 'valid']);
  for (const o of s.acme?.orders ?? []) {
    const c = o.certificate;
    rows.push([`acme:${o.id}`, (c?.names ?? o.hosts).join(','), c?.issuer ?? '-', day(c?.notAfter), day(o.nextRenewal), o.state]);
    if (o.lastError) notes.push(`acme:${o.id}: last error (${day(o.lastErrorAt)}, ${o.failures} in a row): ${o.lastError}`);
    for (const k of o.skipped) notes.push(`acme:${o.id}: ${k.host} not asked for: ${k.reason}`);
  }
  const head = `tls listen: ${s.listen ?? '-'}${s.acme ? `   acme: ${s.acme.directory}` : ''}`;
  return `${head}\n${table(rows)}\n${notes.map((n) => `${n}\n`).join('')}`;
}

export function registerCerts(program: Command): void {
  const certs = program
    .command('certs')
    .description('TLS certificates: hosts, issuer, expiry, next renewal, last error')
    .option('--root <dir>', 'the root directory')
    .option('--json', 'print one JSON object')
    .action(async (f: { root?: string; json?: boolean }) => {
      const s = (await controlRequest(resolveRoot(f.root), 'certs')) as CertsStatus;
      process.stdout.write(f.json ? `${JSON.stringify(s)}\n` : formatCerts(s));
    });
  certs
    .command('renew')
    .description('obtain or renew the ACME certificates now (those due; --force: all)')
    .option('--root <dir>', 'the root directory')
    .option('--force', 'renew even the certificates not due yet')
    .option('--json', 'print one JSON object')
    .action(async (f: { root?: string; force?: boolean; json?: boolean }, cmd: Command) => {
      const root = f.root ?? (cmd.parent?.opts() as { root?: string } | undefined)?.root;
      const s = (await controlRequest(resolveRoot(root), 'certs-renew', { force: f.force === true })) as CertsStatus;
      if (!s.acme) throw new BgError('BG_USAGE', 'no tls.acme in bgproxy.json: own certificates are renewed by replacing their files and bgproxy reload');
      process.stdout.write(f.json ? `${JSON.stringify(s)}\n` : formatCerts(s));
      const failed = s.acme.orders.filter((o) => o.lastError !== null && o.failures > 0);
      if (failed.length > 0) {
        throw new BgError('BG_TLS', `renewal failed for ${failed.map((o) => o.hosts.join(', ')).join('; ')}: ${failed[0]!.lastError}`);
      }
    });
}
