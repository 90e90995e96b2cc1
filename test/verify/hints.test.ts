// verify names the likely cause of a failure class and what to do (issue 23): a TLS site
// loaded over plain HTTP (all redirects), an app refusing POST (405) or the websocket (400);
// with --root it loads the TLS listener itself; with --cutover it makes no cutover when the
// traffic before it already fails.
import type http from 'node:http';
import t from 'tap';
import { likelyCauses } from '../../src/verify/hints.js';
import type { Sample } from '../../src/verify/load.js';
import { summarize } from '../../src/verify/summary.js';
import { colorHandler, startBackend } from '../helpers/backend.js';
import { cli } from '../helpers/cli.js';
import { startProxy } from '../helpers/proxy.js';
import { issueCert, makeCa } from '../helpers/tls.js';

const NO_LOADERS = { NODE_OPTIONS: '' };

function sample(status: number | null, method: 'GET' | 'POST' = 'GET', error: Sample['error'] = status !== null && status >= 300 ? 'non2xx' : null): Sample {
  return { t: 0, ms: 1, status, label: status === 200 ? 'blue' : null, error, keepAlive: true, method, client: 0 };
}

function causes(url: string, samples: Sample[], ws: { ok: boolean; error: string | null } | null = null): string[] {
  const result = {
    url,
    startedAt: 0,
    durationMs: 1000,
    loadMs: 1000,
    keepAliveClients: 1,
    oneShotClients: 2,
    samples,
    marks: [],
    ws: ws && { sent: 1, echoed: 0, lost: 1, closedAt: null, ...ws },
  };
  return summarize(result as Parameters<typeof summarize>[0]).hints;
}

t.test('each failure class gets its cause and its fix; mixed or unknown failures get none', async (t) => {
  t.match(causes('http://127.0.0.1:8080/', [sample(308), sample(308, 'POST')]), [/^every failed answer was a redirect \(308\): the site redirects plain HTTP to HTTPS .*--url https:\/\/HOST:PORT\//]);
  t.same(causes('https://127.0.0.1:8443/', [sample(308)]), [], 'not over https: the redirect is the app\'s own');
  t.same(causes('http://127.0.0.1:8080/', [sample(308), sample(502)]), [], 'not all redirects');
  t.match(causes('http://127.0.0.1:8080/', [sample(200), sample(405, 'POST')]), [/refuses POST at \/ \(405 Method Not Allowed\) while GETs pass: rerun with --no-posts$/]);
  t.match(causes('http://127.0.0.1:8080/', [sample(200)], { ok: false, error: 'upgrade refused: HTTP 400' }), [/answered 400 to the upgrade\): rerun with --no-websocket/]);
  t.match(causes('http://127.0.0.1:8080/', [sample(401), sample(401)]), [/^every failed answer was 401: access rules/]);
  t.match(causes('http://127.0.0.1:1/', [sample(null, 'GET', 'connect')]), [/^no connection could be made to http:\/\/127\.0\.0\.1:1\/: is bgproxy serve running/]);
  t.same(causes('http://127.0.0.1:8080/', [sample(200), sample(200, 'POST')]), [], 'nothing failed');
  t.same(likelyCauses({ url: 'http://x/', requests: 2, failed: 2, connectFailed: 0, statuses: [{ status: 500, method: 'GET', count: 2 }], posts: { requests: 0, failed: 0 }, ws: null }), []);
});

/** An app without POST or websockets, as the repo's Flask example is: 405 and 400. */
function getOnly(name: string): http.RequestListener {
  const inner = colorHandler(name);
  return (req, res) => {
    if (req.headers.upgrade) {
      res.writeHead(400).end('no websocket here\n');
    } else if (req.method === 'POST') {
      req.resume();
      res.writeHead(405, { allow: 'GET, HEAD' }).end('method not allowed\n');
    } else inner(req, res);
  };
}

t.test('verify --root --cutover: the POST and websocket causes named, and no cutover made on a failing baseline', async (t) => {
  const blue = await startBackend(t, getOnly('blue'));
  const green = await startBackend(t, getOnly('green'));
  const p = await startProxy(t, { blue, green });
  const r = await cli(['verify', '--root', p.root, '--duration', '3s', '--connections', '4', '--cutover'], { env: NO_LOADERS });
  t.equal(r.code, 1, r.stderr);
  t.match(r.stdout, /\(Host: live\.test\)/, 'the live host of the root');
  t.match(r.stdout, /^\s+non-2xx answers:\s+405 to POST: \d+$/m);
  t.match(r.stdout, /^Likely cause: the app refuses POST at \/ .*--no-posts$/m);
  t.match(r.stdout, /^Likely cause: the app does not accept a websocket at \/ \(it answered 400 to the upgrade\): rerun with --no-websocket/m);
  t.match(r.stdout, /^[\d.]+s cutover NOT MADE: \d+ requests? of \d+ failed before it \(e\.g\. POST answered 405\); fix the baseline first \(nothing was switched\)$/m);
  t.match(r.stdout, /^FAILED: requests failed before the cutover, so none was made$/m);
  t.equal((await p.bg.status()).live, 'blue', 'production was not switched');
});

t.test('verify --root on a root with tls loads the TLS listener with the live host; plain HTTP is named', async (t) => {
  const ca = makeCa(t);
  const cert = issueCert(ca, 'live', ['live.test']);
  const blue = await startBackend(t, colorHandler('blue'));
  const green = await startBackend(t, colorHandler('green'));
  const p = await startProxy(t, { blue, green, settings: { tls: { listen: '127.0.0.1:0', certificates: [cert] } } });
  const tlsPort = p.tlsListen!.split(':').pop();
  const r = await cli(['verify', '--root', p.root, '--ca', ca.cert, '--duration', '1s', '--connections', '2', '--no-websocket'], { env: NO_LOADERS });
  t.equal(r.code, 0, r.stdout + r.stderr);
  t.match(r.stdout, `verify: bgproxy.json has tls, so the TLS listener is loaded: https://127.0.0.1:${tlsPort}/\n`);
  t.match(r.stdout, /\(Host: live\.test\)/);
  t.match(r.stdout, /^Failed requests:\s+0$/m);
  const plain = await cli(['verify', '--url', `http://127.0.0.1:${p.port}/`, '--root', p.root, '--duration', '1s', '--connections', '2', '--no-websocket'], { env: NO_LOADERS });
  t.equal(plain.code, 1);
  t.match(plain.stdout, /\(Host: live\.test\)/, '--url with the live host of the root, as the help says');
  t.match(plain.stdout, /^Likely cause: every failed answer was a redirect \(308\): the site redirects plain HTTP to HTTPS/m);
});
