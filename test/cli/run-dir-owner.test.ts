// An unusable ROOT/run (the control socket, the lock and serve's pid live there): a file
// instead of the directory, one another user owns or may write (they could replace the
// control socket), one serve cannot write. serve refuses each in one line that says what
// is wrong and what to do, before it binds anything; never a stack trace.
import { chmodSync, chownSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import t from 'tap';
import { BIN, cli, oneLine, serve } from '../helpers/cli.js';
import { makeRoot } from '../helpers/root.js';

const NOBODY = 65534;

t.test('ROOT/run is a file: one line', async (t) => {
  const root = makeRoot(t);
  const run = path.join(root, 'run');
  rmSync(run, { recursive: true });
  writeFileSync(run, 'oops\n');
  oneLine(t, await cli(['serve', '--root', root]), 1, new RegExp(`^bgproxy: ${run} is a file, not a directory: move it away and run bgproxy init`));
});

t.test('ROOT/run owned by another user: one line naming both users', async (t) => {
  const root = makeRoot(t);
  const run = path.join(root, 'run');
  chownSync(run, NOBODY, NOBODY);
  const uid = process.getuid!();
  oneLine(
    t,
    await cli(['serve', '--root', root]),
    1,
    new RegExp(`^bgproxy: ${run} is owned by uid ${NOBODY}, but serve runs as uid ${uid} \\(\\w+\\): run serve as its owner, or chown -R ${uid} ${run}`),
  );
  chownSync(run, uid, process.getgid!());
  const s = await serve(t, root);
  t.equal(await s.stop(), 0, 'serve starts once the owner is right');
});

t.test('ROOT/run writable by other users: one line with the mode', async (t) => {
  const root = makeRoot(t);
  const run = path.join(root, 'run');
  chmodSync(run, 0o777);
  oneLine(t, await cli(['serve', '--root', root]), 1, new RegExp(`^bgproxy: ${run} is writable by other users \\(mode 0777\\): chmod 700 ${run}`));
});

t.test('ROOT/run not writable by the user serve runs as: one line', { skip: process.getuid?.() !== 0 && 'needs root to run serve as another user' }, async (t) => {
  const root = makeRoot(t);
  const run = path.join(root, 'run');
  // The whole root is nobody's, as a service user's would be; its run/ is read-only.
  chmodSync(path.dirname(root), 0o755);
  await execa('chown', ['-R', `${NOBODY}:${NOBODY}`, root]);
  chmodSync(run, 0o500);
  const r = await execa('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, BIN, 'serve', '--root', root], {
    reject: false,
    env: { NODE_OPTIONS: '' },
    timeout: 60_000,
  });
  oneLine(
    t,
    { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) },
    1,
    new RegExp(`^bgproxy: ${run} is not writable by uid ${NOBODY} \\(nobody\\) \\(mode 0500\\): chmod 700 ${run}$`),
  );
});
