import { mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import t from 'tap';
import { type Config, parseConfig } from '../../src/config.js';
import { includeFile, renderInclude, renderServerBlocks, renderUpstream, upstreamFile, upstreamName, writeInclude } from '../../src/nginx/conf.js';

const ROOT = '/srv/shop';

function config(over: Record<string, unknown> = {}, root = ROOT): Config {
  return parseConfig(
    {
      listen: '0.0.0.0:80',
      mode: 'nginx',
      hosts: { live: ['shop.example', 'www.shop.example'], next: ['next.shop.example'] },
      colors: { blue: { port: 8888 }, green: { port: 8889 } },
      ...over,
    },
    root,
  );
}

/** A hand-made config that skipped parseConfig, as a buggy caller might pass. */
function unchecked(patch: (c: Config) => void, base = config()): Config {
  const c = structuredClone(base) as Config;
  patch(c);
  return c;
}

t.test('the include holds the color port, the proxy headers and the color marker', async (t) => {
  const inc = renderInclude(config(), 'green');
  t.match(inc, /^# written by bgproxy/);
  t.match(inc, /^proxy_pass http:\/\/bgproxy_srv_shop_[0-9a-f]{6}_green;$/m);
  t.notMatch(inc, /8888/);
  t.match(inc, /^proxy_http_version 1\.1;$/m);
  for (const h of ['Host $host', 'X-Real-IP $remote_addr', 'X-Forwarded-For $proxy_add_x_forwarded_for', 'X-Forwarded-Proto $scheme', 'X-Forwarded-Host $host', 'Upgrade $http_upgrade', 'Connection $bgproxy_connection']) {
    t.ok(inc.includes(`proxy_set_header ${h};`), h);
  }
  t.match(inc, /location = \/\.well-known\/bgproxy-color \{[^}]*return 200 "green\\n";/);
  t.match(inc, /^proxy_read_timeout 60s;$/m, 'upstreamTimeoutMs (default 60 s)');
});

t.test('the upstream: the color port, keep-alive below the app idle time, a name unique per root', async (t) => {
  const up = renderUpstream(config(), 'green');
  t.match(up, /^upstream (bgproxy_srv_shop_[0-9a-f]{6}_green) \{\n\s*server 127\.0\.0\.1:8889;\n\s*keepalive 16;\n\s*keepalive_timeout 500ms;\n\}$/m);
  t.notMatch(up, /8888/);
  t.ok(renderInclude(config(), 'green').includes(`proxy_pass http://${upstreamName('/srv/shop', 'green')};`), 'the include uses it');
  t.notMatch(renderUpstream(config({ nginx: { upstreamKeepalive: 0 } }), 'green'), /keepalive/, 'upstreamKeepalive 0: none');
  t.match(renderUpstream(config({ timeouts: { upstreamIdleMs: 1500 } }), 'blue'), /keepalive_timeout 1500ms;/);
  t.not(upstreamName('/srv/a-b', 'blue'), upstreamName('/srv/a_b', 'blue'), 'roots that look alike get different names');
  t.match(upstreamName('/srv/shop', 'blue'), /^bgproxy_srv_shop_[0-9a-f]{6}_blue$/);
});

t.test('the server blocks: listen, names, absolute includes, the websocket map, the upstreams', async (t) => {
  const site = renderServerBlocks(config());
  t.match(site, /^# written by bgproxy/);
  t.match(site, /map \$http_upgrade \$bgproxy_connection \{\s*default upgrade;\s*''\s+'';\s*\}/);
  t.match(site, /^include \/srv\/shop\/blue\/etc\/nginx-upstream\.conf;\ninclude \/srv\/shop\/green\/etc\/nginx-upstream\.conf;$/m);
  const blocks = site.split(/^server \{$/m).slice(1);
  t.equal(blocks.length, 2);
  t.match(blocks[0], /listen 80;\n\s*server_name shop\.example www\.shop\.example;\n\s*location \/ \{\n\s*include \/srv\/shop\/live\/etc\/nginx\.conf;/);
  t.match(blocks[1], /listen 80;\n\s*server_name next\.shop\.example;\n\s*location \/ \{\n\s*include \/srv\/shop\/next\/etc\/nginx\.conf;/);
  t.match(renderServerBlocks(config({ listen: '127.0.0.1:8080' })), /listen 127\.0\.0\.1:8080;/);
  t.match(renderServerBlocks(config({ listen: '[::1]:8080' })), /listen \[::1\]:8080;/);
  const noNext = renderServerBlocks(config({ hosts: { live: ['shop.example'] } }));
  t.equal(noNext.split(/^server \{$/m).length, 2, 'no next hosts: one server block');
  t.throws(() => renderServerBlocks(config({ hosts: { live: [], next: ['n.example'] } })), { code: 'BG_CONFIG' });
  t.throws(() => renderServerBlocks(config({ listen: '127.0.0.1:0' })), { code: 'BG_CONFIG' });
});

t.test('rendered files pass nginx -t together, two bgproxy sites on one nginx', async (t) => {
  const dir = t.testdir();
  const sites: string[] = [];
  for (const [name, prefix] of [['shop', ''], ['blog', 'b-']] as const) {
    const root = path.join(dir, name);
    const c = config({ hosts: { live: [`${prefix}shop.example`], next: [`${prefix}next.shop.example`] } }, root);
    for (const d of ['blue/etc', 'green/etc']) mkdirSync(path.join(root, d), { recursive: true });
    symlinkSync('blue', path.join(root, 'live'));
    symlinkSync('green', path.join(root, 'next'));
    writeInclude(c, 'blue');
    writeInclude(c, 'green');
    t.equal(readFileSync(upstreamFile(root, 'green'), 'utf8'), renderUpstream(c, 'green'), 'writeInclude writes the upstream too');
    const site = path.join(dir, `${name}.conf`);
    writeFileSync(site, renderServerBlocks(c));
    sites.push(site);
  }
  // Two roots: the identical map is accepted again, the upstream names do not clash.
  const conf = path.join(dir, 'nginx.conf');
  writeFileSync(conf, `pid ${dir}/nginx.pid; error_log ${dir}/error.log; events {}\nhttp { access_log off; ${sites.map((s) => `include ${s};`).join(' ')} }\n`);
  const r = await execa('/usr/sbin/nginx', ['-p', `${dir}/`, '-c', conf, '-e', `${dir}/error.log`, '-t'], { reject: false, all: true });
  t.equal(r.exitCode, 0, r.all);
});

t.test('injection attempts are refused before anything is written', async (t) => {
  for (const bad of ['a;b', 'x{', 'x}', 'a b', 'a\nb', 'a"b', "a'b", '$host', 'a#b']) {
    t.throws(() => config({ hosts: { live: [bad] } }), { code: 'BG_CONFIG' }, `parseConfig refuses ${JSON.stringify(bad)}`);
    const live = unchecked((c) => {
      c.hosts.live = [bad];
    });
    t.throws(() => renderServerBlocks(live), { code: 'BG_CONFIG', message: /hosts\.live\[0\]/ }, `live ${JSON.stringify(bad)}`);
    const next = unchecked((c) => {
      c.hosts.next = ['ok.example', bad];
    });
    t.throws(() => renderServerBlocks(next), { code: 'BG_CONFIG', message: /hosts\.next\[1\]/ }, `next ${JSON.stringify(bad)}`);
  }
  t.throws(() => renderServerBlocks(unchecked((c) => {
      c.listen.host = '127.0.0.1;x';
    })), { code: 'BG_CONFIG' });
  t.throws(() => renderServerBlocks(unchecked((c) => {
      c.listen.port = 80.5;
    })), { code: 'BG_CONFIG' });
  t.throws(() => renderInclude(unchecked((c) => {
      c.colors.blue.port = 70000;
    }), 'blue'), { code: 'BG_CONFIG' });
  for (const root of ['/srv/my shop', '/srv/a;b', '/srv/x{', '/srv/a\nb', 'relative/root', '/srv/../etc', '/srv/$x']) {
    t.throws(() => renderServerBlocks(unchecked((c) => {
      c.root = root;
    })), { code: 'BG_CONFIG' }, `root ${JSON.stringify(root)}`);
  }
});

t.test('writeInclude writes atomically, only when changed, and stays inside the root', async (t) => {
  const dir = t.testdir({ outside: {} });
  const root = path.join(dir, 'root');
  mkdirSync(path.join(root, 'blue', 'etc'), { recursive: true });
  const c = config({}, root);
  const first = writeInclude(c, 'blue');
  t.same(first, { file: includeFile(root, 'blue'), changed: true });
  t.equal(readFileSync(first.file, 'utf8'), renderInclude(c, 'blue'));
  const mtime = statSync(first.file).mtimeMs;
  t.same(writeInclude(c, 'blue'), { file: first.file, changed: false });
  t.equal(statSync(first.file).mtimeMs, mtime);
  t.ok(writeInclude(c, 'green').changed, 'creates green/etc when missing');
  const fewer = config({ nginx: { upstreamKeepalive: 4 } }, root);
  t.ok(writeInclude(fewer, 'blue').changed, 'a keep-alive change alone rewrites the upstream file');
  t.match(readFileSync(upstreamFile(root, 'blue'), 'utf8'), /keepalive 4;/);

  const linked = path.join(dir, 'root2');
  mkdirSync(path.join(linked, 'blue'), { recursive: true });
  symlinkSync(path.join(dir, 'outside'), path.join(linked, 'blue', 'etc'));
  t.throws(() => writeInclude(config({}, linked), 'blue'), { code: 'BG_NGINX', message: /outside/ });
});

t.test('nginx-compat/site.conf is what nginx-config prints for the shop.example sample', async (t) => {
  const sample = readFileSync(new URL('../../nginx-compat/site.conf', import.meta.url), 'utf8');
  const c = config({ hosts: { live: ['shop.example', 'www.shop.example'], next: ['next.shop.example'] } });
  t.equal(sample, renderServerBlocks(c), 'regenerate nginx-compat/site.conf when the rendering changes');
});
