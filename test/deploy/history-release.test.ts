import { appendFileSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { appendHistory, formatHistory, historyPath, readHistory } from '../../src/deploy/history.js';
import { clearRelease, type ReleaseInfo, readRelease, writeRelease } from '../../src/deploy/release.js';

const SHA = '3f2a1c9d0e8b7a6f5e4d3c2b1a0f9e8d7c6b5a49';

t.test('history: append, read all or the last n, format', async (t) => {
  const root = t.testdir();
  t.same(await readHistory(root), [], 'no file yet');
  t.equal(formatHistory([]), 'no history yet');

  const first = await appendHistory(root, { action: 'deploy', color: 'green', commit: SHA, result: 'ok', durationMs: 12_345 });
  t.match(first.time, /^\d{4}-\d\d-\d\dT/, 'time filled in');
  await appendHistory(root, {
    time: '2025-01-02T03:04:05.678Z',
    action: 'cutover',
    color: 'green',
    result: 'ok',
    durationMs: 80,
    from: 'blue',
  });
  await appendHistory(root, {
    action: 'deploy',
    color: 'blue',
    commit: SHA,
    result: 'failed',
    durationMs: 61_000,
    message: 'install failed: "npm ci"\nexited with code 1',
  });

  const all = await readHistory(root);
  t.equal(all.length, 3);
  t.match(all[1], { action: 'cutover', from: 'blue', time: '2025-01-02T03:04:05.678Z' }, 'extra fields kept');
  t.same((await readHistory(root, 2)).map((e) => e.result), ['ok', 'failed']);
  t.match(readFileSync(historyPath(root), 'utf8').split('\n')[0], /^\{"time":/, 'one JSON object per line, time first');

  const table = formatHistory(all).split('\n');
  t.match(table[0], /^TIME\s+ACTION\s+COLOR\s+COMMIT\s+RESULT\s+DURATION\s+MESSAGE$/);
  t.match(table[2], /^2025-01-02 03:04:05Z\s+cutover\s+green\s+-\s+ok\s+80ms$/);
  t.match(table[3], /deploy\s+blue\s+3f2a1c9\s+failed\s+1m 1s\s+install failed: "npm ci" exited with code 1$/);
  t.match(table[1], /12\.3s/);
});

t.test('history: a torn last line is skipped; concurrent appends never interleave', async (t) => {
  const root = t.testdir();
  await Promise.all(
    Array.from({ length: 50 }, (_, i) =>
      appendHistory(root, { action: 'deploy', color: 'blue', result: 'ok', durationMs: i, message: 'x'.repeat(500) }),
    ),
  );
  appendFileSync(historyPath(root), '{"time":"2025-01-0');
  const all = await readHistory(root);
  t.equal(all.length, 50);
  t.same(new Set(all.map((e) => e.durationMs)).size, 50);
});

t.test('release.json: written atomically, read back, absent or corrupt is null', async (t) => {
  const root = t.testdir();
  t.equal(await readRelease(root, 'green'), null);
  const info: ReleaseInfo = {
    commit: SHA,
    shortCommit: SHA.slice(0, 7),
    subject: 'Fix checkout',
    source: '/srv/shop/repo.git',
    ref: 'refs/heads/main',
    deployedAt: '2025-01-02T03:04:05.678Z',
    installMs: 4321,
  };
  await writeRelease(root, 'green', info);
  t.same(await readRelease(root, 'green'), info);
  t.equal(await readRelease(root, 'blue'), null, 'per color');
  t.same(readdirSync(path.join(root, 'green', 'etc')), ['release.json'], 'no temp file left');

  await writeRelease(root, 'green', { ...info, subject: 'second' });
  t.equal((await readRelease(root, 'green'))?.subject, 'second', 'overwritten');

  writeFileSync(path.join(root, 'green', 'etc', 'release.json'), '{"commit": "nope"');
  t.equal(await readRelease(root, 'green'), null, 'corrupt');
  await clearRelease(root, 'green');
  await clearRelease(root, 'green');
  t.equal(await readRelease(root, 'green'), null);
});
