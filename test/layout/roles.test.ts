import { existsSync, mkdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { initRoot } from '../../src/layout/init.js';
import { readRawRoles, repairRoles, writeRoles } from '../../src/layout/roles.js';
import { tempDir } from '../helpers/root.js';

function link(root: string, role: string, target: string): void {
  try {
    unlinkSync(path.join(root, role));
  } catch {}
  symlinkSync(target, path.join(root, role));
}

t.test('init creates the layout with relative links and a 0700 run dir', async (t) => {
  const root = path.join(tempDir(t), 'shop');
  const r = initRoot({ root, settings: { hosts: { live: ['shop.example'], next: ['next.shop.example'] } } });
  t.equal(r.configWritten, 'created');
  for (const d of ['blue/env', 'blue/etc', 'blue/repo', 'green/env', 'green/etc', 'green/repo', 'logs', 'repo.git/HEAD']) {
    t.ok(existsSync(path.join(root, d)), d);
  }
  t.equal(readlinkSync(path.join(root, 'live')), 'blue');
  t.equal(readlinkSync(path.join(root, 'next')), 'green');
  t.equal(statSync(path.join(root, 'run')).mode & 0o777, 0o700);
  const again = initRoot({ root, settings: { hosts: { live: ['shop.example'], next: ['next.shop.example'] } } });
  t.equal(again.configWritten, 'unchanged', 'idempotent');
  t.same(again.created, []);
});

t.test('init keeps the roles of an existing root and refuses to change a config without force', async (t) => {
  const root = path.join(tempDir(t), 'shop');
  initRoot({ root, settings: { hosts: { live: ['a.example'], next: [] } } });
  writeRoles(root, 'green');
  const before = readFileSync(path.join(root, 'bgproxy.json'), 'utf8');
  t.throws(() => initRoot({ root, settings: { hosts: { live: ['b.example'], next: [] } } }), { code: 'BG_STATE', message: /hosts\.live/ });
  t.equal(readFileSync(path.join(root, 'bgproxy.json'), 'utf8'), before, 'config unchanged');
  const r = initRoot({ root, settings: {} });
  t.equal(r.roles.roles.live, 'green', 'live kept');
  const forced = initRoot({ root, settings: { hosts: { live: ['b.example'], next: [] } }, force: true });
  t.equal(forced.configWritten, 'updated');
});

t.test('init adopts a root made by the classic recipe (absolute links, no config)', async (t) => {
  const root = path.join(tempDir(t), 'recipe');
  for (const c of ['blue', 'green']) mkdirSync(path.join(root, c, 'repo'), { recursive: true });
  symlinkSync(path.join(root, 'green'), path.join(root, 'live'));
  symlinkSync(path.join(root, 'blue'), path.join(root, 'next'));
  writeFileSync(path.join(root, 'green', 'repo', 'app.py'), 'x');
  const r = initRoot({ root, settings: {} });
  t.equal(r.roles.repaired, null);
  t.same(r.roles.roles, { live: 'green', next: 'blue' });
  t.equal(readlinkSync(path.join(root, 'live')), path.join(root, 'green'), 'the recipe links are left as they were');
  t.ok(existsSync(path.join(root, 'green', 'repo', 'app.py')));
});

t.test('a bad setting changes nothing on disk', async (t) => {
  const root = path.join(tempDir(t), 'bad');
  t.throws(() => initRoot({ root, settings: { colors: { blue: { port: 9000 }, green: { port: 9000 } } } }), { code: 'BG_CONFIG' });
  t.notOk(existsSync(root));
});

t.test('repair: both links on one color, a missing link, garbage', async (t) => {
  const root = tempDir(t);
  link(root, 'live', 'green');
  link(root, 'next', 'green');
  let r = repairRoles(root);
  t.same(r.roles, { live: 'green', next: 'blue' }, 'a crash between the two renames: live wins');
  t.match(r.repaired, /both pointed at green/);
  t.same(readRawRoles(root), { live: 'green', next: 'blue' });

  unlinkSync(path.join(root, 'live'));
  r = repairRoles(root);
  t.same(r.roles, { live: 'green', next: 'blue' }, 'live derived from next');

  unlinkSync(path.join(root, 'next'));
  r = repairRoles(root);
  t.same(r.roles, { live: 'green', next: 'blue' }, 'next derived from live');

  link(root, 'live', 'elsewhere');
  rmSync(path.join(root, 'next'));
  r = repairRoles(root);
  t.same(r.roles, { live: 'blue', next: 'green' }, 'nothing usable: the default');
  t.equal(repairRoles(root).repaired, null, 'consistent links are left alone');
});

t.test('writeRoles never leaves a moment without a live link', async (t) => {
  const root = tempDir(t);
  writeRoles(root, 'blue');
  let missing = 0;
  let reads = 0;
  // Counts, not a time: each swap syncs to disk, and under load two swaps took 300 ms.
  const giveUpAt = Date.now() + 60_000;
  const reader = setInterval(() => {
    for (let i = 0; i < 50; i++) {
      reads++;
      if (readRawRoles(root).live === null) missing++;
    }
  }, 0);
  let flips = 0;
  while ((flips < 20 || reads < 500) && Date.now() < giveUpAt) {
    writeRoles(root, flips % 2 ? 'blue' : 'green');
    flips++;
    await new Promise((r) => setImmediate(r));
  }
  clearInterval(reader);
  t.ok(flips >= 20 && reads >= 500, `${flips} swaps, ${reads} reads`);
  t.equal(missing, 0, 'the link was always there');
});
