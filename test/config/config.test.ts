import fc from 'fast-check';
import t from 'tap';
import { parseConfig, parseHostName, parseListen } from '../../src/config.js';
import { normalizeHost } from '../../src/proxy/host.js';

const base = { hosts: { live: ['shop.example'], next: ['next.shop.example'] } };

t.test('defaults fill in a minimal config, frozen', async (t) => {
  const c = parseConfig({}, '/srv/x');
  t.same(c.listen, { host: '0.0.0.0', port: 80 });
  t.equal(c.colors.blue.port, 8888);
  t.equal(c.colors.green.port, 8889);
  t.equal(c.unknownHost, 'live');
  t.equal(c.app.health.path, '/');
  t.equal(c.mode, 'proxy');
  t.equal(c.timeouts.upstreamIdleMs, 500, 'pooled app connections idle below a 1 s app keep-alive');
  t.ok(Object.isFrozen(c.app.health));
});

const bad: Array<[string, unknown, RegExp]> = [
  ['unknown key', { ...base, colour: {} }, /colour: unknown key/],
  ['unknown nested key', { app: { strat: 'x' } }, /app\.strat: unknown key/],
  ['wrong type', { drainTimeoutMs: '30s' }, /drainTimeoutMs: must be an integer/],
  ['port out of range', { colors: { blue: { port: 70000 } } }, /colors\.blue\.port: must be between 1 and 65535/],
  ['same port', { colors: { blue: { port: 9000 }, green: { port: 9000 } } }, /colors: blue and green use the same port 9000/],
  ['host in both lists', { hosts: { live: ['a.example'], next: ['A.example'] } }, /"a\.example" is in both/],
  ['malformed host', { hosts: { live: ['bad host'] } }, /hosts\.live\[0\]: malformed host name/],
  ['injection in host', { hosts: { live: ['a.example;include /etc/passwd'] } }, /hosts\.live\[0\]/],
  ['bad listen', { listen: 'localhost:http' }, /listen: must be/],
  ['bad mode', { mode: 'haproxy' }, /mode: must be one of/],
  ['bad unknownHost', { unknownHost: 'drop' }, /unknownHost: must be one of/],
  ['bad health path', { app: { health: { path: 'health' } } }, /app\.health\.path: must start with/],
  ['app.dir escapes', { app: { dir: '../x' } }, /app\.dir/],
  ['upstream idle too short', { timeouts: { upstreamIdleMs: 10 } }, /timeouts\.upstreamIdleMs: must be between 100 and 600000/],
  ['bad trustProxy', { trustProxy: ['example.com'] }, /trustProxy\[0\]/],
  ['not an object', [], /must be an object/],
];
for (const [name, raw, msg] of bad) {
  t.test(`refused: ${name}`, async (t) => {
    t.throws(() => parseConfig(raw, '/srv/x'), { code: 'BG_CONFIG', message: msg });
  });
}

t.test('listen forms', async (t) => {
  t.same(parseListen('127.0.0.1:0'), { host: '127.0.0.1', port: 0 });
  t.same(parseListen('8080'), { host: '0.0.0.0', port: 8080 });
  t.same(parseListen('[::1]:80'), { host: '::1', port: 80 });
  t.same(parseListen(':81'), { host: '0.0.0.0', port: 81 });
});

t.test('fuzz: the host parser never throws on arbitrary Host headers and only yields safe names', async (t) => {
  fc.assert(
    fc.property(fc.string({ maxLength: 300 }), (s) => {
      const h = normalizeHost(s);
      return h === null || /^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)$/.test(h);
    }),
    { numRuns: 3000 },
  );
  t.pass('no throw, only safe characters');
});

t.test('fuzz: a valid name with case, port and trailing dot routes like the bare name', async (t) => {
  const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?$/);
  fc.assert(
    fc.property(fc.array(label, { minLength: 1, maxLength: 4 }), fc.integer({ min: 1, max: 65535 }), fc.boolean(), (labels, port, dot) => {
      const name = labels.join('.');
      const header = `${name.toUpperCase()}${dot ? '.' : ''}:${port}`;
      return normalizeHost(header) === name && parseHostName(name, 'k') === name;
    }),
  );
  t.pass();
});

t.test('fuzz: the config validator either returns a config or throws BG_CONFIG', async (t) => {
  fc.assert(
    fc.property(fc.jsonValue({ maxDepth: 4 }), (raw) => {
      try {
        parseConfig(raw, '/srv/x');
        return true;
      } catch (err) {
        return (err as { code?: string }).code === 'BG_CONFIG';
      }
    }),
    { numRuns: 2000 },
  );
  t.pass();
});

t.test('nginx mode needs a real listen port and a live host', async (t) => {
  t.throws(() => parseConfig({ mode: 'nginx', listen: '127.0.0.1:0', hosts: { live: ['a.test'] } }, '/srv/x'), { message: /^config: listen: nginx mode/ });
  t.throws(() => parseConfig({ mode: 'nginx' }, '/srv/x'), { message: /^config: hosts\.live: nginx mode/ });
  t.equal(parseConfig({ mode: 'nginx', hosts: { live: ['a.test'] } }, '/srv/x').mode, 'nginx');
});

t.test('limits: defaults and a URL limit that must fit in the head', async (t) => {
  t.same(parseConfig({}, '/srv/x').limits, { maxHeaders: 100, maxHeaderBytes: 16384, maxUrlBytes: 8192, pausedRequests: 10000, maxBodyBytes: 64 * 1024 * 1024 });
  t.throws(() => parseConfig({ limits: { maxUrlBytes: 20000 } }, '/srv/x'), { message: /^config: limits\.maxUrlBytes: must be below/ });
  t.throws(() => parseConfig({ limits: { maxHeaders: 5 } }, '/srv/x'), { message: /^config: limits\.maxHeaders: must be between 10 and 1000/ });
});
