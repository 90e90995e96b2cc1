import net from 'node:net';
import t from 'tap';
import { loadConfig, parseConfig } from '../../src/config.js';
import { silentLogger } from '../../src/log.js';
import { startServer } from '../../src/serve.js';
import { colorHandler, startBackend } from '../helpers/backend.js';
import { editConfig, makeRoot } from '../helpers/root.js';
import { startProxy } from '../helpers/proxy.js';

t.test('metrics.listen: absent is off; a bare port means 127.0.0.1', async (t) => {
  t.equal(parseConfig({}, '/srv/x').metrics, null);
  t.same(parseConfig({ metrics: { listen: '9145' } }, '/srv/x').metrics, { listen: { host: '127.0.0.1', port: 9145 } });
  t.same(parseConfig({ metrics: { listen: 9145 } }, '/srv/x').metrics, { listen: { host: '127.0.0.1', port: 9145 } });
  t.same(parseConfig({ metrics: { listen: '0.0.0.0:9145' } }, '/srv/x').metrics, { listen: { host: '0.0.0.0', port: 9145 } }, 'every interface only when asked');
});

t.test('metrics: bad values are refused naming the key', async (t) => {
  const cases: Array<[unknown, RegExp]> = [
    [{ listen: 'localhost:metrics' }, /^config: metrics\.listen: must be "HOST:PORT" or "PORT"/],
    [{}, /^config: metrics\.listen: missing/],
    [{ listen: '127.0.0.1:9145', path: '/m' }, /^config: metrics\.path: unknown key/],
    [{ listen: '127.0.0.1:80' }, /^config: metrics\.listen: port 80 is also the listen port/],
    [{ listen: '8888' }, /^config: metrics\.listen: port 8888 is also blue's port/],
    ['9145', /^config: metrics: must be an object/],
  ];
  for (const [metrics, msg] of cases) t.throws(() => parseConfig({ metrics }, '/srv/x'), { code: 'BG_CONFIG', message: msg }, JSON.stringify(metrics));
  t.throws(() => parseConfig({ metrics: { listen: '9443' }, tls: { listen: '127.0.0.1:9443' } }, '/srv/x'), { message: /metrics\.listen: port 9443 is also the tls\.listen port/ });
});

t.test('a reload that adds, changes or removes metrics is refused: only a restart binds the listener', async (t) => {
  const blue = await startBackend(t, colorHandler('blue'));
  const green = await startBackend(t, colorHandler('green'));
  const p = await startProxy(t, { blue, green });
  editConfig(p.root, (c) => {
    c.metrics = { listen: '127.0.0.1:0' };
  });
  await t.rejects(p.reload(), { code: 'BG_CONFIG', message: /^config: metrics: changed, and only a restart of serve applies it; nothing was reloaded/ });
  t.equal(p.bg.metrics, null, 'still off');
});

t.test('a metrics port already taken: serve refuses in one line and leaves nothing listening', async (t) => {
  const holder = net.createServer();
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
  t.teardown(() => holder.close());
  const taken = (holder.address() as net.AddressInfo).port;
  const root = makeRoot(t, { metrics: { listen: `127.0.0.1:${taken}` } });
  await t.rejects(startServer({ config: loadConfig(root), logger: silentLogger(), accessLog: false }), {
    code: 'BG_STATE',
    // The holder here is this test process itself.
    message: new RegExp(`^cannot listen on 127\\.0\\.0\\.1:${taken} \\(metrics\\.listen\\): port ${taken} is already in use by pid ${process.pid} \\(.*\\): stop it, or change metrics\\.listen in bgproxy\\.json$`),
  });
  // The control socket went with it: a second serve on the same root starts.
  editConfig(root, (c) => {
    delete c.metrics;
  });
  const again = await startServer({ config: loadConfig(root), logger: silentLogger(), accessLog: false });
  await again.stop();
});
