// `npm run demo` as users run it: scripts/demo.js on the built dist/, a file of its own so
// that its minute or two on a loaded machine has tap's whole per-file timeout.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import t from 'tap';
import { tempDir } from '../helpers/root.js';

const PKG = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
// tap's loaders in NODE_OPTIONS would slow every child process start.
const NO_LOADERS = { NODE_OPTIONS: '' };

t.test('npm run demo (scripts/demo.js on the built dist/) ends with exit 0 and a chart', async (t) => {
  const dir = tempDir(t);
  const chart = path.join(dir, 'demo.svg');
  const started = Date.now();
  const r = await execa('node', [path.join(PKG, 'scripts', 'demo.js'), '--chart', chart], {
    reject: false,
    env: NO_LOADERS,
    // It finishes (exit 0) within this or is killed; how long it takes is load's business.
    timeout: 240_000,
  });
  const out = `${r.stdout}\n${r.stderr}`;
  t.equal(r.exitCode, 0, out);
  t.comment(`npm run demo finished in ${Date.now() - started} ms`);
  t.ok(existsSync(chart), 'chart written');
  t.match(r.stdout, /^Failed requests:\s+0$/m);
  t.match(r.stdout, /Hello 0-downtime green World! \(version v1\)[\s\S]*Hello 0-downtime blue World! \(version v2\)/);
  const tmp = /temp dir (\S+)/.exec(r.stdout)?.[1];
  t.ok(tmp && !existsSync(tmp), `temp dir ${tmp} removed`);
});
