// On a Node whose node:http internals lack the HTTP parser binding the engine uses, serve
// exits at start with one line naming the Node version (never a stack trace, never a failure
// per request), and the commands that need no proxy still work.
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { cli } from '../helpers/cli.js';
import { makeRoot, tempDir } from '../helpers/root.js';

/** A preload that makes require('_http_common') fail, as a Node that removed it would. */
function withoutInternal(t: Parameters<typeof tempDir>[0]): Record<string, string> {
  const file = path.join(tempDir(t), 'no-http-common.cjs');
  writeFileSync(
    file,
    `const Module = require('node:module');
const load = Module._load;
Module._load = function (request, ...rest) {
  if (request === '_http_common') throw new Error('Cannot find module _http_common');
  return load.call(this, request, ...rest);
};
`,
  );
  return { ...(process.env as Record<string, string>), NODE_OPTIONS: `--require ${file}` };
}

t.test('serve on a Node without _http_common: one line naming the Node version, exit 1', async (t) => {
  const root = makeRoot(t, { hosts: { live: ['live.test'], next: ['next.live.test'] } });
  const r = await cli(['serve', '--root', root], { env: withoutInternal(t) });
  t.equal(r.code, 1);
  const lines = r.stderr.trim().split('\n');
  t.equal(lines.length, 1, `one line: ${r.stderr}`);
  t.match(lines[0], new RegExp(`Node ${process.version.replaceAll('.', '\\.')} lacks the _http_common module`));
  t.notMatch(r.stderr, /\n\s+at /, 'no stack trace');
});

t.test('commands that need no proxy still run there', async (t) => {
  const root = path.join(tempDir(t), 'fresh');
  const r = await cli(['init', '--root', root, '--host', 'shop.test'], { env: withoutInternal(t) });
  t.equal(r.code, 0, r.stderr);
  t.ok(existsSync(path.join(root, 'bgproxy.json')), 'init wrote the root');
});
