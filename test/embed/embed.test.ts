// The embedding API as a Node host uses it: bgproxy's handlers on the host's own server.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { Bgproxy, type CutoverResult, isBgError, loadConfig } from '../../src/index.js';
import { colorHandler, startBackend } from '../helpers/backend.js';
import { get } from '../helpers/http.js';
import { makeRoot } from '../helpers/root.js';

t.test('handlers mounted on a host server; cutover and drained events; coded errors', async (t) => {
  const blue = await startBackend(t, colorHandler('blue'));
  const green = await startBackend(t, colorHandler('green'));
  const root = makeRoot(t, {
    hosts: { live: ['app.test'], next: ['next.app.test'] },
    colors: { blue: { port: blue.port }, green: { port: green.port } },
  });
  const bg = new Bgproxy({ config: loadConfig(root) });
  const server = http.createServer((req, res) => {
    if (req.url === '/host-own') return res.end('host');
    bg.handleRequest(req, res);
  });
  server.on('upgrade', bg.handleUpgrade);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await bg.close(100);
  });
  const port = (server.address() as AddressInfo).port;
  t.equal(await get(port, 'app.test', '/host-own'), 'host', 'the host keeps its own routes');
  t.equal(await get(port, 'app.test'), 'blue');
  const events: string[] = [];
  bg.on('cutover', (r: CutoverResult) => events.push(`cutover ${r.live}`));
  bg.on('drained', (r: CutoverResult) => events.push(`drained ${r.was}`));
  await bg.cutover();
  t.same(events, ['cutover green', 'drained blue']);
  t.equal(await get(port, 'app.test'), 'green');
  const s = await bg.status();
  t.equal(s.live, 'green');
  t.equal(s.colors.green.served, 1);
  await green.close();
  await bg.rollback();
  const err = await bg.rollback().catch((e: unknown) => e);
  t.ok(isBgError(err, 'BG_UNHEALTHY'), 'errors carry a code');
});
