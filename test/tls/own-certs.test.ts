// HTTPS with the operator's own certificates: chosen by SNI, same routing and headers as
// plain HTTP, SNI/Host agreement, http->https, reload without a restart, bad pairs refused.
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import tls from 'node:tls';
import t from 'tap';
import WebSocket from 'ws';
import { loadConfig } from '../../src/config.js';
import { silentLogger } from '../../src/log.js';
import { startServer } from '../../src/serve.js';
import { colorHandler, startBackend } from '../helpers/backend.js';
import { cli } from '../helpers/cli.js';
import { request } from '../helpers/http.js';
import { startProxy } from '../helpers/proxy.js';
import { editConfig, makeRoot } from '../helpers/root.js';
import { httpsRequest, issueCert, makeCa, serialOf } from '../helpers/tls.js';

const tlsPort = (p: { tlsListen: string | null }): number => Number(p.tlsListen!.split(':').pop());

async function setup(t: { teardown(fn: () => unknown): void }, extra: Record<string, unknown> = {}) {
  const ca = makeCa(t);
  const live = issueCert(ca, 'live', ['live.test']);
  const wild = issueCert(ca, 'wild', ['*.live.test']);
  const blue = await startBackend(t, colorHandler('blue'), { websocket: true });
  const green = await startBackend(t, colorHandler('green'), { websocket: true });
  const p = await startProxy(t, {
    blue,
    green,
    settings: { tls: { listen: '127.0.0.1:0', certificates: [live, wild], ...extra } },
  });
  return { ca, live, wild, blue, green, p, port: tlsPort(p) };
}

t.test('the certificate is chosen by SNI; requests route by Host as over HTTP, with X-Forwarded-Proto https', async (t) => {
  const { ca, live, wild, p, port } = await setup(t);
  const a = await httpsRequest({ port, host: 'live.test', ca: ca.pem, path: '/echo' });
  t.equal(a.status, 200);
  t.equal(a.serial, serialOf(live.cert), 'live.test got its own certificate');
  t.equal(a.alpn, 'http/1.1', 'ALPN http/1.1');
  const echo = JSON.parse(a.body) as { headers: Record<string, string> };
  t.equal(echo.headers['x-forwarded-proto'], 'https');
  t.equal(echo.headers['x-forwarded-host'], 'live.test');
  const n = await httpsRequest({ port, host: 'next.live.test', ca: ca.pem });
  t.equal(n.serial, serialOf(wild.cert), 'next.live.test got the wildcard');
  t.equal(n.body, 'green\n', 'the next host goes to next');
  const plain = await request(p.port, 'other.test', { path: '/echo' });
  t.equal((JSON.parse(plain.body) as { headers: Record<string, string> }).headers['x-forwarded-proto'], 'http', 'a host without a certificate stays on http');
  const status = await p.bg.status();
  t.equal(status.tls?.own.length, 2);
  t.equal(status.tls?.listen, p.tlsListen);
});

t.test('an SNI name and a Host that disagree get 421; no SNI gets the default certificate', async (t) => {
  const { ca, live, port } = await setup(t);
  const r = await httpsRequest({ port, host: 'next.live.test', servername: 'live.test', ca: ca.pem });
  t.equal(r.status, 421);
  t.match(r.body, /SNI/);
  const none = await httpsRequest({ port, host: 'live.test', servername: false, ca: ca.pem });
  t.equal(none.status, 200, 'no SNI: Host decides');
  t.equal(none.serial, serialOf(live.cert), 'the first own certificate is the default');
  await t.rejects(httpsRequest({ port, host: 'unknown.example', ca: ca.pem }), /altnames|does not match|Hostname/i, 'an unknown SNI gets the default, which the client refuses');
});

t.test('RSA and ECDSA certificates side by side: SNI gets each its own; without SNI the handshake is refused', async (t) => {
  const ca = makeCa(t);
  const rsa = issueCert(ca, 'rsa', ['live.test'], 1, 'rsa');
  const ec = issueCert(ca, 'ec', ['next.live.test']);
  const blue = await startBackend(t, colorHandler('blue'));
  const green = await startBackend(t, colorHandler('green'));
  const p = await startProxy(t, { blue, green, settings: { tls: { listen: '127.0.0.1:0', certificates: [ec, rsa] } } });
  const port = tlsPort(p);
  t.equal((await httpsRequest({ port, host: 'live.test', ca: ca.pem })).serial, serialOf(rsa.cert), 'RSA for live.test');
  t.equal((await httpsRequest({ port, host: 'next.live.test', ca: ca.pem })).serial, serialOf(ec.cert), 'ECDSA for next.live.test');
  await t.rejects(httpsRequest({ port, host: 'live.test', servername: false, ca: ca.pem }), 'no SNI: refused (no default with mixed key types)');
  t.equal((await httpsRequest({ port, host: 'live.test', ca: ca.pem })).status, 200, 'still serving');
});

t.test('http redirects to https with 308 for hosts with a certificate, except the ACME path; HSTS when asked for', async (t) => {
  const { ca, p, port } = await setup(t, { hstsMaxAge: 600 });
  const r = await request(p.port, 'live.test', { path: '/a/b?c=1' });
  t.equal(r.status, 308);
  t.equal(r.headers.location, `https://live.test:${port}/a/b?c=1`);
  const acme = await request(p.port, 'live.test', { path: '/.well-known/acme-challenge/xyz' });
  t.equal(acme.status, 200, 'the challenge path goes through (to the app here: no such token)');
  const post = await new Promise<http.IncomingMessage>((resolve, reject) => {
    const req = http.request({ port: p.port, method: 'POST', path: '/form', headers: { host: 'live.test', 'content-length': '5' } }, resolve);
    req.on('error', reject);
    req.end('hello');
  });
  t.equal(post.statusCode, 308, 'POST keeps its method with 308');
  t.equal(post.headers.connection, 'close', 'and the unread body ends the connection');
  post.resume();
  const s = await httpsRequest({ port, host: 'live.test', ca: ca.pem });
  t.equal(s.headers['strict-transport-security'], 'max-age=600');
  const h = await request(p.port, 'other.test');
  t.equal(h.headers['strict-transport-security'], undefined, 'no HSTS over http');
});

t.test('redirectHttp false leaves http alone', async (t) => {
  const { p } = await setup(t, { redirectHttp: false });
  const r = await request(p.port, 'live.test');
  t.equal(r.status, 200);
});

t.test('TLS 1.2+ only; sessions resume', async (t) => {
  const { ca, port } = await setup(t);
  const old = tls.connect({ port, host: '127.0.0.1', servername: 'live.test', ca: ca.pem, maxVersion: 'TLSv1.1', minVersion: 'TLSv1' });
  const err = await new Promise<Error>((resolve) => {
    old.once('error', resolve);
    old.once('secureConnect', () => resolve(new Error('connected')));
  });
  t.not(err.message, 'connected', `TLS 1.1 refused (${err.message})`);
  old.destroy();
  for (const maxVersion of ['TLSv1.2', 'TLSv1.3'] as const) {
    const first = tls.connect({ port, host: '127.0.0.1', servername: 'next.live.test', ca: ca.pem, maxVersion });
    const session = await new Promise<Buffer>((resolve, reject) => {
      first.once('session', resolve);
      first.once('error', reject);
      // TLS 1.3 sends its ticket after the handshake: read something.
      first.once('secureConnect', () => first.write('GET / HTTP/1.1\r\nHost: next.live.test\r\n\r\n'));
      first.on('data', () => {});
    });
    first.destroy();
    const second = tls.connect({ port, host: '127.0.0.1', servername: 'next.live.test', ca: ca.pem, maxVersion, session });
    await new Promise<void>((resolve, reject) => {
      second.once('secureConnect', () => resolve());
      second.once('error', reject);
    });
    t.ok(second.isSessionReused(), `${maxVersion}: the session was resumed`);
    second.destroy();
  }
});

t.test('websockets over TLS', async (t) => {
  const { ca, port } = await setup(t);
  const opts: WebSocket.ClientOptions & tls.ConnectionOptions = { headers: { host: 'live.test' }, servername: 'live.test', ca: ca.pem };
  const ws = new WebSocket(`wss://127.0.0.1:${port}/`, opts);
  t.teardown(() => ws.terminate());
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const echoed = new Promise<string>((resolve) => ws.once('message', (d) => resolve(d.toString())));
  ws.send('over tls');
  t.match(await echoed, /over tls/);
});

t.test('bgproxy reload swaps a certificate without dropping a connection; a bad pair is refused and nothing changes', async (t) => {
  const { ca, live, p, port } = await setup(t);
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  const before = await httpsRequest({ port, host: 'live.test', ca: ca.pem, agent });
  t.equal(before.serial, serialOf(live.cert));
  // A new certificate for the same name, written where the config points.
  const fresh = issueCert(ca, 'live2', ['live.test']);
  copyFileSync(fresh.cert, live.cert);
  copyFileSync(fresh.key, live.key);
  const plan = await p.reload();
  t.same(plan.changed, [], 'the config itself did not change');
  t.match(plan.notes, [/tls: new certificate for live.test/]);
  // Own certificates are read again at every reload, changed config or not.
  const after = await httpsRequest({ port, host: 'live.test', ca: ca.pem });
  t.equal(after.serial, serialOf(fresh.cert), 'a new handshake gets the new certificate');
  const kept = await httpsRequest({ port, host: 'live.test', ca: ca.pem, agent });
  t.equal(kept.status, 200);
  t.equal(kept.serial, before.serial, 'the kept-alive connection still has the certificate it started with');

  // A key that does not match: refused, naming the file; the old pair keeps being served.
  const other = issueCert(ca, 'other', ['live.test']);
  copyFileSync(other.key, live.key);
  await t.rejects(p.reload(), { code: 'BG_TLS', message: `${live.key}: this key does not belong to the certificate in ${live.cert}` });
  const still = await httpsRequest({ port, host: 'live.test', ca: ca.pem });
  t.equal(still.serial, serialOf(fresh.cert), 'nothing changed');
});

t.test('serve refuses to start with a bad pair, in one line naming the file', async (t) => {
  const ca = makeCa(t);
  const a = issueCert(ca, 'a', ['live.test']);
  const garbage = path.join(ca.dir, 'garbage.pem');
  writeFileSync(garbage, 'not a certificate\n');
  for (const [certificates, message] of [
    [[{ cert: garbage, key: a.key }], `${garbage}: not a PEM certificate`],
    [[{ cert: a.cert, key: a.cert }], `${a.cert}: not a PEM private key`],
    [[{ cert: a.cert, key: path.join(ca.dir, 'missing.key') }], `${path.join(ca.dir, 'missing.key')}: cannot read (ENOENT)`],
  ] as const) {
    const root = makeRoot(t, { hosts: { live: ['live.test'], next: [] }, colors: { blue: { port: 1 }, green: { port: 2 } }, tls: { listen: '127.0.0.1:0', certificates } });
    const e = await startServer({ config: loadConfig(root), logger: silentLogger(), accessLog: false }).then(
      () => null,
      (err: Error & { code?: string }) => err,
    );
    t.equal(e?.code, 'BG_TLS');
    t.match(e?.message, message);
    t.notMatch(e?.message ?? '', /\n/, 'one line');
  }
  t.equal(readFileSync(a.cert, 'utf8').includes('BEGIN CERTIFICATE'), true);
});

t.test('a graceful stop ends idle keep-alive HTTPS connections and finishes a request in flight', async (t) => {
  const ca = makeCa(t);
  const cert = issueCert(ca, 'live', ['live.test']);
  const blue = await startBackend(t, colorHandler('blue'));
  const green = await startBackend(t, colorHandler('green'));
  const p = await startProxy(t, { blue, green, settings: { drainTimeoutMs: 10_000, tls: { listen: '127.0.0.1:0', certificates: [cert] } } });
  const port = tlsPort(p);
  const agent = new https.Agent({ keepAlive: true, maxSockets: 2 });
  t.teardown(() => agent.destroy());
  t.equal((await httpsRequest({ port, host: 'live.test', ca: ca.pem, agent })).status, 200, 'an idle keep-alive connection');
  const slow = httpsRequest({ port, host: 'live.test', ca: ca.pem, path: '/slow?ms=700' });
  await new Promise((r) => setTimeout(r, 150));
  const started = performance.now();
  await p.stop();
  const ms = performance.now() - started;
  t.equal((await slow).body, 'blue\n', 'the request in flight finished');
  t.ok(ms < 3000, `stopped in ${Math.round(ms)} ms, not at the 10 s drain deadline`);
});

t.test('bgproxy certs lists own certificates; certs renew without acme and certs without tls say why in one line', async (t) => {
  const { live, wild, p } = await setup(t);
  const r = await cli(['certs', '--root', p.root]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, new RegExp(`^${live.cert.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\s+live\\.test\\s+bgproxy test CA\\s+\\d{4}-`, 'm'));
  t.match(r.stdout, /\*\.live\.test/);
  const j = JSON.parse((await cli(['certs', '--json', '--root', p.root])).stdout) as { own: Array<{ cert: string; key: string }>; acme: null };
  t.same(
    j.own.map((c) => [c.cert, c.key]),
    [
      [live.cert, live.key],
      [wild.cert, wild.key],
    ],
  );
  t.equal(j.acme, null);
  const renew = await cli(['certs', 'renew', '--root', p.root]);
  t.equal(renew.code, 2);
  t.match(renew.stderr, /^bgproxy: no tls\.acme in bgproxy\.json: own certificates are renewed by replacing their files and bgproxy reload$/);

  const blue = await startBackend(t, colorHandler('blue'));
  const green = await startBackend(t, colorHandler('green'));
  const plain = await startProxy(t, { blue, green });
  const none = await cli(['certs', '--root', plain.root]);
  t.equal(none.code, 1);
  t.match(none.stderr, /^bgproxy: no tls in bgproxy\.json: bgproxy serves plain HTTP only \(add a "tls" section and restart serve for HTTPS\)$/);
  // tls added to the file, serve not restarted: it is not loaded yet, and the message says so (issue 23).
  editConfig(plain.root, (c) => {
    c.tls = { listen: '127.0.0.1:0', certificates: [{ cert: live.cert, key: live.key }] };
  });
  const pending = await cli(['certs', '--root', plain.root]);
  t.equal(pending.code, 1);
  t.equal(pending.stderr, 'bgproxy: bgproxy.json has tls, but this serve started without it: adding tls opens a listener, so restart serve to load it (bgproxy reload refuses it)');
  const st = await cli(['status', '--root', plain.root]);
  t.match(st.stdout, /bgproxy\.json has changed since serve loaded it \(.*\): bgproxy reload would refuse it \(config: tls: adding it opens or closes a listener; restart serve to apply it\)$/m);
});
