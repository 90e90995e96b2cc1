// Automatic certificates from a real ACME CA (pebble), validated for real against
// bgproxy's own listeners: HTTP-01 on the plain one, TLS-ALPN-01 on the TLS one.
import { statSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import t from 'tap';
import { formatStatus } from '../../src/cli/ops.js';
import type { OrderStatus } from '../../src/tls/acme.js';
import { colorHandler, startBackend } from '../helpers/backend.js';
import { cli } from '../helpers/cli.js';
import { request } from '../helpers/http.js';
import { type Pebble, startDns, startPebble } from '../helpers/pebble.js';
import { startProxy, type TestProxy } from '../helpers/proxy.js';
import { editConfig } from '../helpers/root.js';
import { httpsRequest } from '../helpers/tls.js';

type T = { teardown(fn: () => unknown): void };

const wait = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until<V>(what: string, fn: () => V | undefined | null | false, timeoutMs = 30_000): Promise<V> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await wait(50);
  }
}

interface Setup {
  p: TestProxy;
  pebble: Pebble;
  tlsPort: number;
  ca: Buffer;
  orders(): OrderStatus[];
}

/**
 * bgproxy with a TLS listener and no certificate, pebble pointed at its two listeners,
 * then tls.acme added by a reload (pebble needs bgproxy's ports, bgproxy needs pebble's).
 */
async function setup(
  t: T,
  o: { validitySeconds?: number; challenge?: string; next?: string[]; resolve?: string[]; unknownHost?: 'reject' } = {},
): Promise<Setup> {
  const dns = await startDns(t);
  for (const h of o.resolve ?? ['live.test', 'next.live.test']) await dns.addHost(h);
  const blue = await startBackend(t, colorHandler('blue'));
  const green = await startBackend(t, colorHandler('green'));
  const p = await startProxy(t, {
    blue,
    green,
    settings: {
      hosts: { live: ['live.test'], next: o.next ?? ['next.live.test'] },
      tls: { listen: '127.0.0.1:0' },
      ...(o.unknownHost ? { unknownHost: o.unknownHost } : {}),
    },
  });
  const tlsPort = Number(p.tlsListen!.split(':').pop());
  const pebble = await startPebble(t, { httpPort: p.port, tlsPort, dns: dns.address, ...(o.validitySeconds ? { validitySeconds: o.validitySeconds } : {}) });
  editConfig(p.root, (c) => {
    c.tls = {
      listen: '127.0.0.1:0',
      acme: { email: 'ops@example.com', directory: pebble.directory, caBundle: pebble.caBundle, dnsServers: [dns.address], ...(o.challenge ? { challenge: o.challenge } : {}) },
    };
  });
  const plan = await p.reload();
  if (!plan.changed.includes('tls.acme')) throw new Error(`reload did not add tls.acme: ${plan.changed.join(', ')}`);
  const ca = await pebble.root();
  return { p, pebble, tlsPort, ca, orders: () => p.bg.tls!.status().acme!.orders };
}

t.test('HTTP-01: certificates obtained at start, served, stored 0600 in a 0700 ROOT/tls; a forced renewal swaps without dropping a connection', async (t) => {
  // unknownHost "reject": the router refuses unknown hosts before any gate; the CA asks with a configured Host, so the challenge still passes.
  const s = await setup(t, { unknownHost: 'reject' });
  const { p, tlsPort, ca } = s;
  const orders = await until('both certificates', () => {
    const o = s.orders();
    return o.length === 2 && o.every((x) => x.state === 'valid' && x.certificate) && o;
  });
  t.same(
    orders.map((o) => [o.id, o.certificate!.names]),
    [
      ['live', ['live.test']],
      ['next', ['next.live.test']],
    ],
    'one certificate per host list',
  );
  t.match(orders[0]!.certificate!.issuer, /Pebble/);
  t.ok(orders.every((o) => o.nextRenewal !== null && o.lastError === null));
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  const first = await httpsRequest({ port: tlsPort, host: 'live.test', ca, agent });
  t.equal(first.status, 200, 'verified against pebble root');
  t.equal(first.body, 'blue\n');
  t.equal(first.serial, orders[0]!.certificate!.serial.toUpperCase());
  const n = await httpsRequest({ port: tlsPort, host: 'next.live.test', ca });
  t.equal(n.body, 'green\n');

  const dir = path.join(p.root, 'tls');
  t.equal(statSync(dir).mode & 0o777, 0o700, 'ROOT/tls is 0700');
  for (const f of ['account.key', 'live.pem', 'next.pem']) t.equal(statSync(path.join(dir, f)).mode & 0o777, 0o600, `${f} is 0600`);

  t.equal((await request(p.port, 'live.test', { path: '/x' })).status, 308, 'http now redirects for live.test');
  t.equal((await request(p.port, 'unknown.test')).status, 421, 'unknown hosts are still refused');

  const renewed = await p.bg.tls!.renew(true);
  const after = renewed.acme!.orders[0]!;
  t.not(after.certificate!.serial, orders[0]!.certificate!.serial, 'forced renewal: a new certificate');
  const fresh = await httpsRequest({ port: tlsPort, host: 'live.test', ca });
  t.equal(fresh.serial, after.certificate!.serial.toUpperCase(), 'new handshakes get it');
  const kept = await httpsRequest({ port: tlsPort, host: 'live.test', ca, agent });
  t.equal(kept.status, 200);
  t.equal(kept.serial, first.serial, 'the kept-alive connection was not dropped: it still has its certificate');

  // The CLI shows the same, through the control socket.
  const r = await cli(['certs', '--json', '--root', p.root]);
  t.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout) as { acme: { orders: OrderStatus[] } };
  t.equal(j.acme.orders[0]!.certificate!.serial, after.certificate!.serial);
  const text = await cli(['certs', '--root', p.root]);
  t.match(text.stdout, /acme:live\s+live\.test\s+Pebble/);

  // A restart of serve loads what is on disk instead of asking again.
  const again = await cli(['certs', 'renew', '--root', p.root]);
  t.equal(again.code, 0, again.stderr);
  t.match(again.stdout, /acme:live/);
  t.equal(s.orders()[0]!.certificate!.serial, after.certificate!.serial, 'renew without --force leaves a fresh certificate alone');
});

t.test('short lifetime: renewed in the background at two thirds of it', async (t) => {
  const s = await setup(t, { validitySeconds: 12 });
  const first = await until('a certificate', () => s.orders()[0]?.certificate);
  const due = Date.parse(first.notBefore) + ((Date.parse(first.notAfter) - Date.parse(first.notBefore)) * 2) / 3;
  t.equal(s.orders()[0]!.nextRenewal, new Date(due).toISOString(), 'scheduled at 2/3 of the lifetime');
  const second = await until('a renewal', () => {
    const c = s.orders()[0]?.certificate;
    return c && c.serial !== first.serial && c;
  }, 20_000);
  t.ok(Date.now() >= due - 1000, 'not before it was due');
  const r = await httpsRequest({ port: s.tlsPort, host: 'live.test', ca: s.ca });
  t.equal(r.serial, second.serial.toUpperCase(), 'served without a restart');
});

t.test('the CA down: the old certificate keeps being served, the failure is loud and retried', async (t) => {
  // 60 s: retries come within seconds (backoff scales with the lifetime), renewal is not due for 40 s.
  const s = await setup(t, { validitySeconds: 60 });
  // Both orders done: an order in flight when the CA dies polls it for a while before failing.
  await until('both certificates', () => s.orders().every((o) => o.certificate) && s.orders().length === 2);
  const first = s.orders()[0]!.certificate!;
  await s.pebble.stop();
  const r = await cli(['certs', 'renew', '--force', '--root', s.p.root]);
  t.equal(r.code, 1, `certs renew fails: ${r.stderr}`);
  t.match(r.stderr, /^bgproxy: renewal failed for live\.test; next\.live\.test: ACME (http-01|tls-alpn-01) order for live\.test failed: cannot reach the CA at https:\/\/localhost:\d+\/dir: ECONNREFUSED$/);
  t.equal(r.stderr.trim().split('\n').length, 1, 'in one line');
  const failed = s.orders()[0]!;
  t.ok(failed.failures >= 1);
  t.equal(failed.certificate?.serial, first.serial, 'the old certificate is kept');
  const retried = await until('retries', () => s.orders()[0]!.failures >= 3 && s.orders()[0], 20_000);
  t.ok(retried.failures >= 3, `retried in the background (${retried.failures} failures)`);
  const served = await httpsRequest({ port: s.tlsPort, host: 'live.test', ca: s.ca });
  t.equal(served.serial, first.serial.toUpperCase(), 'the old certificate is still served');
  const status = await s.p.bg.status();
  t.match(formatStatus(status), /tls: certificate for live\.test: \d+ failed attempts?, last: ACME/, 'bgproxy status shows it');
});

t.test('TLS-ALPN-01: answered by the TLS listener, no port 80 needed', async (t) => {
  const s = await setup(t, { challenge: 'tls-alpn-01' });
  await until('both certificates', () => s.orders().every((o) => o.certificate) && s.orders().length === 2).catch((e: Error) => {
    throw new Error(`${e.message}: ${s.orders().map((o) => `${o.id}: ${o.lastError}`)}`);
  });
  t.ok(s.p.bg.tls!.status().alpnChallenges >= 2, 'the CA validated over acme-tls/1');
  const r = await httpsRequest({ port: s.tlsPort, host: 'next.live.test', ca: s.ca });
  t.equal(r.status, 200);
  t.equal(r.body, 'green\n');
});

t.test('never asks the CA for a host that does not resolve, and says so', async (t) => {
  const s = await setup(t, { next: ['next.live.test', 'nowhere.test'], resolve: ['live.test', 'next.live.test'] });
  const next = await until('the next certificate', () => s.orders().find((o) => o.id === 'next' && o.certificate));
  t.same(next.certificate!.names, ['next.live.test'], 'ordered without it');
  t.match(next.skipped, [{ host: 'nowhere.test', reason: /does not resolve/ }]);
  const text = await cli(['certs', '--root', s.p.root]);
  t.match(text.stdout, /acme:next: nowhere\.test not asked for: does not resolve/);
});

t.test('no host of a list resolves: no order, the reason in status', async (t) => {
  const s = await setup(t, { resolve: ['live.test'] });
  const next = await until('the next order to fail', () => s.orders().find((o) => o.id === 'next' && o.lastError));
  t.match(next.lastError, /not asking the CA for next hosts: none resolves here \(next\.live\.test: does not resolve/);
  t.equal(next.certificate, null);
});
