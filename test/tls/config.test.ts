// The tls keys of bgproxy.json: defaults, names for Let's Encrypt, and bad input refused
// in one line naming the key; what a reload may change.
import t from 'tap';
import { ACME_DIRECTORIES, parseConfig } from '../../src/config.js';
import { planReload } from '../../src/reload.js';

const base = { hosts: { live: ['a.test'], next: [] }, listen: '127.0.0.1:80' };

t.test('defaults and names', async (t) => {
  t.equal(parseConfig(base, '/srv/x').tls, null, 'no tls: plain HTTP only');
  const c = parseConfig({ ...base, tls: { acme: { email: 'ops@example.com' }, certificates: [{ cert: 'c.pem', key: 'k.pem' }] } }, '/srv/x');
  t.same(c.tls?.listen, { host: '0.0.0.0', port: 443 });
  t.equal(c.tls?.redirectHttp, true);
  t.equal(c.tls?.hstsMaxAge, 0, 'HSTS is opt-in');
  t.equal(c.tls?.acme?.directory, ACME_DIRECTORIES.production, "Let's Encrypt production by default");
  t.same(c.tls?.certificates, [{ cert: '/srv/x/c.pem', key: '/srv/x/k.pem' }], 'relative to the root');
  const s = parseConfig({ ...base, tls: { acme: { directory: 'staging' } } }, '/srv/x');
  t.equal(s.tls?.acme?.directory, ACME_DIRECTORIES.staging, 'staging by name');
});

t.test('bad tls input: refused with the key named, in one line', async (t) => {
  const cases: Array<[unknown, RegExp]> = [
    [{ listen: 'nope' }, /^config: tls\.listen: must be "HOST:PORT"/],
    [{ listen: '127.0.0.1:80' }, /^config: tls\.listen: port 80 is also the plain listen port$/],
    [{ certificates: [{ cert: 'c.pem' }] }, /^config: tls\.certificates\[0\]\.key: missing$/],
    [{ certificates: 'c.pem' }, /^config: tls\.certificates: must be a list$/],
    [{ acme: { directory: 'http://ca.test/dir' } }, /^config: tls\.acme\.directory: must be "production", "staging" or an https URL/],
    [{ acme: { email: 'nobody' } }, /^config: tls\.acme\.email: not an email address/],
    [{ acme: { challenge: 'dns-01' } }, /^config: tls\.acme\.challenge: must be one of "auto", "http-01", "tls-alpn-01"/],
    [{ acme: { dnsServers: ['dns.example'] } }, /^config: tls\.acme\.dnsServers\[0\]: not "IP" or "IP:PORT"/],
    [{ redirectHttp: 'yes' }, /^config: tls\.redirectHttp: must be true or false/],
    [{ hsts: 1 }, /^config: tls\.hsts: unknown key \(did you mean "hstsMaxAge"\?\)|^config: tls\.hsts: unknown key; valid keys: .*hstsMaxAge/],
  ];
  for (const [tls, re] of cases) {
    t.throws(() => parseConfig({ ...base, tls }, '/srv/x'), { code: 'BG_CONFIG', message: re }, JSON.stringify(tls));
  }
  t.throws(
    () => parseConfig({ ...base, mode: 'nginx', tls: {} }, '/srv/x'),
    { code: 'BG_CONFIG', message: /^config: tls: nginx mode: nginx terminates TLS/ },
  );
});

t.test('reload: certificates, redirect, HSTS and ACME apply; adding tls or moving its listener needs a restart', async (t) => {
  const a = parseConfig({ ...base, tls: { listen: '127.0.0.1:443' } }, '/srv/x');
  const b = parseConfig({ ...base, tls: { listen: '127.0.0.1:443', redirectHttp: false, hstsMaxAge: 60, acme: { directory: 'staging' } } }, '/srv/x');
  t.same(planReload(a, b).changed.sort(), ['tls.acme', 'tls.hstsMaxAge', 'tls.redirectHttp']);
  t.throws(() => planReload(parseConfig(base, '/srv/x'), a), { code: 'BG_CONFIG', message: /^config: tls: adding it opens or closes a listener/ });
  t.throws(() => planReload(a, parseConfig({ ...base, tls: { listen: '127.0.0.1:8443' } }, '/srv/x')), { code: 'BG_CONFIG', message: /^config: tls\.listen: changed/ });
});
