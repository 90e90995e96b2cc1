// Files bgproxy writes stay inside ROOT and are never written through a symlink.
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { writeRelease } from '../../src/deploy/release.js';
import { writeFileAtomic } from '../../src/layout/atomic.js';
import { initRoot } from '../../src/layout/init.js';
import { tempDir } from '../helpers/root.js';

t.test('a symlink where bgproxy writes a file is refused, and its target untouched', async (t) => {
  const dir = tempDir(t);
  const outside = path.join(dir, 'outside.txt');
  writeFileSync(outside, 'precious');
  const root = path.join(dir, 'root');
  initRoot({ root, settings: {} });
  const release = path.join(root, 'green', 'etc', 'release.json');
  symlinkSync(outside, release);
  await t.rejects(
    writeRelease(root, 'green', { commit: 'a'.repeat(40), shortCommit: 'aaaaaaa', subject: 's', source: 'x', ref: 'x', deployedAt: '', installMs: 0 }),
    { code: 'BG_LAYOUT', message: /is a symlink/ },
  );
  t.equal(readFileSync(outside, 'utf8'), 'precious');
  writeFileAtomic(path.join(root, 'green', 'etc', 'plain.txt'), 'x');
  t.equal(readFileSync(path.join(root, 'green', 'etc', 'plain.txt'), 'utf8'), 'x', 'plain files are written');
});

t.test('init refuses a bgproxy.json that is a symlink out of the root', async (t) => {
  const dir = tempDir(t);
  const root = path.join(dir, 'root');
  mkdirSync(root);
  const outside = path.join(dir, 'elsewhere.json');
  writeFileSync(outside, JSON.stringify({ listen: '127.0.0.1:8080' }));
  symlinkSync(outside, path.join(root, 'bgproxy.json'));
  t.throws(() => initRoot({ root, settings: { listen: '127.0.0.1:9090' }, force: true }), { code: 'BG_LAYOUT' });
  t.equal(JSON.parse(readFileSync(outside, 'utf8')).listen, '127.0.0.1:8080', 'the target was not rewritten');
  t.notOk(existsSync(path.join(root, 'run')), 'nothing was created either');
});
