// nginx mode: access.*.allow becomes nginx allow/deny (with realip behind trustProxy), checked
// against a real nginx; basic auth is refused at config load with the reason.
import t from 'tap';
import { parseConfig } from '../../src/config.js';
import { renderServerBlocks } from '../../src/nginx/conf.js';
import { hashPassword } from '../../src/traffic/passwd.js';
import { request } from '../helpers/http.js';
import { nginxFixture } from '../helpers/nginx.js';
import { tempDir } from '../helpers/root.js';

t.test('the site file carries allow/deny per server block, realip only behind trusted proxies', async (t) => {
  const base = { mode: 'nginx', listen: '80', hosts: { live: ['shop.example'], next: ['next.shop.example'] } };
  const site = renderServerBlocks(parseConfig({ ...base, access: { next: { allow: ['203.0.113.0/24', '2001:db8::/32'] } } }, '/srv/shop'));
  const [live, next] = site.split(/^server \{$/m).slice(1);
  t.notMatch(live, /allow|deny/, 'the live block is open');
  t.match(next, /^ {4}allow 203\.0\.113\.0\/24;\n {4}allow 2001:db8::\/32;\n {4}deny all;\n {4}location \/ \{$/m);
  t.notMatch(next, /set_real_ip_from/);
  const behind = renderServerBlocks(parseConfig({ ...base, trustProxy: ['10.0.0.1'], access: { live: { allow: ['198.51.100.0/24'] } } }, '/srv/shop'));
  t.match(behind, /set_real_ip_from 10\.0\.0\.1;\n {4}real_ip_header X-Forwarded-For;\n {4}real_ip_recursive on;\n {4}allow 198\.51\.100\.0\/24;\n {4}deny all;/);
  t.throws(
    () => parseConfig({ ...base, access: { next: { basicAuth: { user: 'team', hash: hashPassword('pw') } } } }, '/srv/shop'),
    { code: 'BG_CONFIG', message: /^config: access\.next\.basicAuth: nginx mode cannot check it: nginx's auth_basic reads crypt\(3\) hashes, not scrypt/ },
  );
});

t.test('a real nginx refuses next to other addresses and lets the allowed ones in', async (t) => {
  const f = await nginxFixture(t, tempDir(t, 'bgn-'), {
    trustProxy: ['127.0.0.1'],
    access: { next: { allow: ['10.20.0.0/16'] } },
  });
  const port = f.nginx.port;
  const next = (xff?: string) => request(port, 'next.shop.test', { headers: xff ? { 'x-forwarded-for': xff } : {} });
  t.equal((await next()).status, 403, 'no forwarded address: 127.0.0.1 is not allowed');
  t.equal((await next('10.30.1.1')).status, 403);
  const ok = await next('10.20.1.1');
  t.equal(ok.status, 200, 'behind the trusted proxy, the forwarded client is allowed');
  t.equal(ok.body, 'green');
  t.equal((await next('10.20.1.1, 10.30.1.1')).status, 403, 'the nearest untrusted hop is the client');
  t.equal((await request(port, 'shop.test')).status, 200, 'live is open');
  t.equal(f.green.requests, 1, 'only the allowed request reached the app');
});
