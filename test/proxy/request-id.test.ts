import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import WebSocket from 'ws';
import { Bgproxy } from '../../src/bgproxy.js';
import { loadConfig } from '../../src/config.js';
import { RequestIds, wellFormedRequestId } from '../../src/proxy/request-id.js';
import { startServer } from '../../src/serve.js';
import { type Backend, startBackend } from '../helpers/backend.js';
import { request } from '../helpers/http.js';
import { makeRoot } from '../helpers/root.js';
import { issueCert, makeCa } from '../helpers/tls.js';

const HEX32 = /^[0-9a-f]{32}$/;

/** Echoes the X-Request-Id it got in its body; /own answers with an X-Request-Id of its own. */
const app: http.RequestListener = (req, res) => {
  const headers: http.OutgoingHttpHeaders = { 'content-type': 'text/plain' };
  if (req.url === '/own') headers['x-request-id'] = 'the-apps-own-id';
  req.resume();
  req.once('end', () => res.writeHead(200, headers).end(String(req.headers['x-request-id'])));
};

interface Setup {
  port: number;
  /** The TLS listener's port (with a tls section in the settings), else 0. */
  tlsPort: number;
  bg: Bgproxy;
  blue: Backend;
  /** The access log lines written so far, parsed. */
  access(): Array<Record<string, unknown>>;
  flush(): void;
}

async function setup(t: Test, settings: Record<string, unknown> = {}): Promise<Setup> {
  const blue = await startBackend(t, app, { websocket: true });
  const green = await startBackend(t, app);
  const root = makeRoot(t, {
    hosts: { live: ['live.test'], next: ['next.live.test'] },
    colors: { blue: { port: blue.port }, green: { port: green.port } },
    holdMs: 0,
    ...settings,
  });
  let out = '';
  const logger = pino(
    { base: { name: 'bgproxy' } },
    {
      write: (s: string) => {
        out += s;
      },
    },
  );
  const running = await startServer({ config: loadConfig(root), logger, accessLog: true });
  t.teardown(() => running.stop());
  return {
    port: Number(running.listen!.split(':').pop()),
    tlsPort: running.tlsListen === null ? 0 : Number(running.tlsListen.split(':').pop()),
    bg: running.bg,
    blue,
    access: () =>
      out
        .split('\n')
        .filter((l) => l.includes('"component":"access"'))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    flush: () => running.bg.handlers.flush(),
  };
}

t.test('a generated id reaches the app, comes back, and is in the access log line', async (t) => {
  const s = await setup(t);
  const a = await request(s.port, 'live.test', { headers: { 'x-request-id': 'from-the-client' } });
  const b = await request(s.port, 'live.test');
  t.match(a.body, HEX32, 'an untrusted client cannot choose the id: a new one is made');
  t.equal(a.headers['x-request-id'], a.body, 'the client gets the id the app got');
  t.equal(b.headers['x-request-id'], b.body);
  t.not(a.body, b.body, 'one id per request');
  t.equal(s.blue.seen[0]!.headers['x-request-id'], a.body, 'the app saw one X-Request-Id header');
  s.flush();
  t.match(s.access(), [
    { method: 'GET', path: '/', status: 200, color: 'blue', id: a.body },
    { status: 200, id: b.body },
  ]);
});

t.test("a trusted proxy's well-formed id is kept end to end; a malformed one is replaced", async (t) => {
  const s = await setup(t, { trustProxy: ['127.0.0.1'] });
  const uuid = '4bf92f35-77b3-4da6-a3ce-929d0e0e4736';
  const kept = await request(s.port, 'live.test', { headers: { 'x-request-id': uuid } });
  t.equal(kept.body, uuid, 'the app gets the edge id');
  t.equal(kept.headers['x-request-id'], uuid);
  for (const bad of ['a b', 'x'.repeat(129), 'id"quote', 'ünïcode']) {
    const r = await request(s.port, 'live.test', { headers: { 'x-request-id': Buffer.from(bad).toString('latin1') } });
    t.match(r.body, HEX32, `replaced: ${JSON.stringify(bad.slice(0, 20))}`);
    t.equal(r.headers['x-request-id'], r.body);
  }
  s.flush();
  t.equal(s.access()[0]!.id, uuid, 'the access log has the edge id');
});

t.test("the app's own X-Request-Id gives way; bgproxy's answers carry the id too", async (t) => {
  const s = await setup(t, { trustProxy: ['127.0.0.1'] });
  const own = await request(s.port, 'live.test', { path: '/own', headers: { 'x-request-id': 'edge-1' } });
  t.equal(own.headers['x-request-id'], 'edge-1', 'one id for the client: the one the app was sent and the log has');
  t.notMatch(own.headers['x-request-id'], /,/, 'not two headers folded');

  // A 502 (the live app is gone) and a gate's answer (maintenance) come from bgproxy: with the id.
  await s.blue.close();
  const bad = await request(s.port, 'live.test', { headers: { 'x-request-id': 'edge-2' } });
  t.equal(bad.status, 502);
  t.equal(bad.headers['x-request-id'], 'edge-2');
  s.flush();
  t.match(s.access().at(-1), { status: 502, id: 'edge-2' });
  await s.bg.maintenance(true);
  const closed = await request(s.port, 'live.test', { headers: { 'x-request-id': 'edge-3' } });
  t.equal(closed.status, 503);
  t.equal(closed.headers['x-request-id'], 'edge-3');
});

t.test('a websocket upgrade carries the id to the app and back', async (t) => {
  const s = await setup(t);
  const upgrades: http.IncomingHttpHeaders[] = [];
  s.blue.server.on('upgrade', (req: http.IncomingMessage) => upgrades.push(req.headers));
  const ws = new WebSocket(`ws://127.0.0.1:${s.port}/`, { headers: { host: 'live.test' } });
  t.teardown(() => ws.terminate());
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => ws.once('upgrade', resolve).once('error', reject));
  const id = res.headers['x-request-id'];
  t.match(id, HEX32);
  t.equal(upgrades[0]?.['x-request-id'], id, 'the app saw the same id');
  s.flush();
  t.match(s.access().at(-1), { status: 101, upgrade: true, id });
});

t.test('over HTTP/2: each stream gets its own id, sent to the app, returned, and logged', async (t) => {
  const ca = makeCa(t);
  const s = await setup(t, { tls: { listen: '127.0.0.1:0', certificates: [issueCert(ca, 'live', ['live.test'])] } });
  const session = http2.connect(`https://127.0.0.1:${s.tlsPort}`, { ca: ca.pem, servername: 'live.test' });
  session.on('error', () => {});
  t.teardown(() => session.destroy());
  const get = (headers: http2.OutgoingHttpHeaders): Promise<{ id: unknown; body: string }> =>
    new Promise((resolve, reject) => {
      const req = session.request({ ':path': '/', ':authority': 'live.test', ...headers });
      let id: unknown;
      let body = '';
      req.on('response', (h) => {
        id = h['x-request-id'];
      });
      req.setEncoding('utf8');
      req.on('data', (d: string) => (body += d));
      req.on('end', () => resolve({ id, body }));
      req.on('error', reject);
    });
  const [a, b] = await Promise.all([get({ 'x-request-id': 'from-the-client' }), get({})]);
  t.match(a.body, HEX32, 'an untrusted client cannot choose the id over h2 either');
  t.equal(a.id, a.body, 'the stream gets back the id the app got');
  t.equal(b.id, b.body);
  t.not(a.body, b.body, 'one id per stream on one session');
  s.flush();
  const lines = s.access();
  t.same(lines.map((l) => l.id).sort(), [a.body, b.body].sort(), 'both lines carry their id');
});

t.test('embedded in a host http.Server: the same id three ways', async (t) => {
  const blue = await startBackend(t, app);
  const green = await startBackend(t, app);
  const root = makeRoot(t, { hosts: { live: ['live.test'], next: [] }, colors: { blue: { port: blue.port }, green: { port: green.port } }, holdMs: 0 });
  const bg = new Bgproxy({ config: loadConfig(root), accessLog: false });
  t.teardown(() => bg.close(1000));
  const host = http.createServer(bg.handleRequest);
  await new Promise<void>((resolve) => host.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise((resolve) => host.close(resolve)));
  const r = await request((host.address() as AddressInfo).port, 'live.test');
  t.match(r.body, HEX32);
  t.equal(r.headers['x-request-id'], r.body);
});

t.test('what counts as well formed', async (t) => {
  for (const ok of ['a', '4bf92f35-77b3-4da6-a3ce-929d0e0e4736', 'Root=1-5f84c7a9-abc:def/ghi+jkl@m_n.o', 'x'.repeat(128)]) {
    t.ok(wellFormedRequestId(ok), ok.slice(0, 40));
  }
  for (const bad of ['', 'x'.repeat(129), 'a b', 'a,b', 'a;b', 'a"b', 'a\\b', 'é', 'a\tb']) t.notOk(wellFormedRequestId(bad), JSON.stringify(bad));
});

t.test('generated ids: 32 hex characters, distinct across refills of the random block', async (t) => {
  const ids = new RequestIds();
  const seen = new Set<string>();
  for (let i = 0; i < 2000; i++) seen.add(ids.generate());
  t.equal(seen.size, 2000);
  t.ok([...seen].every((id) => HEX32.test(id)));
});
