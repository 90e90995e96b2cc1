// An AppProcess stopped the hard ways: SIGTERM ignored, children forked, output flooding the log.
import { statSync } from 'node:fs';
import t from 'tap';
import { tailLog } from '../../src/supervisor/log-file.js';
import { groupMembers } from '../../src/supervisor/process-group.js';
import { alive, startable } from './setup.js';

t.test('an app ignoring SIGTERM is killed after stopTimeoutMs', async (t) => {
  const { app } = await startable(t, { env: { FIXTURE_IGNORE_TERM: '1' }, stopTimeoutMs: 500 });
  await app.start();
  const pid = app.pid!;
  const started = Date.now();
  t.same(await app.stop(), { killed: true });
  t.ok(Date.now() - started >= 450, 'waited for stopTimeoutMs first');
  t.notOk(alive(pid));
  t.same(groupMembers(pid), []);
  t.equal(app.state, 'stopped');
});

t.test('forked children leave nothing behind', async (t) => {
  for (const variant of ['children die on SIGTERM', 'children ignore SIGTERM']) {
    await t.test(variant, async (t) => {
      const ignore = variant.includes('ignore');
      const { app, logFile } = await startable(t, {
        env: { FIXTURE_FORK_CHILDREN: '3', ...(ignore ? { FIXTURE_CHILDREN_IGNORE_TERM: '1' } : {}) },
        stopTimeoutMs: ignore ? 500 : 10_000,
      });
      await app.start();
      const pgid = app.pid!;
      const line = (await tailLog(logFile, 50)).find((l) => l.startsWith('children '));
      const children = (line ?? '').split(' ').slice(1).map(Number);
      t.equal(children.length, 3, 'the app forked 3 children');
      const members = groupMembers(pgid);
      for (const c of children) t.ok(members.includes(c), `child ${c} is in the group`);
      const { killed } = await app.stop();
      t.equal(killed, ignore);
      t.same(groupMembers(pgid), [], 'the process group is empty');
      for (const pid of [pgid, ...children]) t.notOk(alive(pid), `pid ${pid} gone`);
    });
  }
});

t.test('a chatty app never grows its log past the cap', async (t) => {
  const max = 16 * 1024;
  const { app, logFile } = await startable(t, { env: { FIXTURE_CHATTY: '1' }, logMaxBytes: max });
  let rotations = 0;
  const oversized: number[] = [];
  await app.start();
  // ~100 KB/s against a 16 KB cap: several rotations in a second.
  const deadline = Date.now() + 15_000;
  let lastIno = -1;
  while (rotations < 4 && Date.now() < deadline) {
    const st = statSync(logFile);
    if (lastIno !== -1 && st.ino !== lastIno) rotations++;
    lastIno = st.ino;
    if (st.size > max) oversized.push(st.size);
    await new Promise((r) => setTimeout(r, 20));
  }
  t.ok(rotations >= 4, `rotated ${rotations} times`);
  t.same(oversized, [], 'the current log never passed the cap');
  t.ok(statSync(`${logFile}.1`).size <= max);
  const lines = await tailLog(logFile, 5);
  t.equal(lines.length, 5);
  for (const l of lines) t.match(l, /^\d+ chatty/);
  await app.stop();
});
