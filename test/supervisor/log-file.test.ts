import { appendFileSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { followLog, LogFile, tailLog } from '../../src/supervisor/log-file.js';

const size = (f: string): number => statSync(f).size;

t.test('rotates to .1 instead of passing maxBytes', async (t) => {
  const dir = t.testdir({});
  const file = path.join(dir, 'logs', 'blue.log');
  const log = new LogFile(file, 1000);
  t.teardown(() => log.close());
  for (let i = 0; i < 100; i++) log.write(`line ${String(i).padStart(3, '0')} ${'x'.repeat(40)}\n`);
  t.ok(size(file) <= 1000, `current ${size(file)} <= 1000`);
  t.ok(size(`${file}.1`) <= 1000, `rotated ${size(`${file}.1`)} <= 1000`);
  const lines = await tailLog(file, 3);
  t.same(
    lines.map((l) => l.slice(0, 8)),
    ['line 097', 'line 098', 'line 099'],
  );
  // More lines than COLOR.log holds: the rest comes from COLOR.log.1, in order.
  const many = await tailLog(file, 30);
  t.equal(many.length, 30);
  t.equal(many[29]?.slice(0, 8), 'line 099');
  t.equal(many[0]?.slice(0, 8), 'line 070');
});

t.test('a chunk larger than the cap keeps its end', async (t) => {
  const dir = t.testdir({});
  const file = path.join(dir, 'g.log');
  const log = new LogFile(file, 100);
  t.teardown(() => log.close());
  log.write('a'.repeat(50));
  log.write(`${'b'.repeat(300)}END`);
  t.equal(size(file), 100);
  t.ok(readFileSync(file, 'utf8').endsWith('bEND'));
  t.equal(readFileSync(`${file}.1`, 'utf8'), 'a'.repeat(50));
});

t.test('continues an existing file and counts its size', async (t) => {
  const dir = t.testdir({ 'b.log': 'x'.repeat(90) });
  const file = path.join(dir, 'b.log');
  const log = new LogFile(file, 100);
  t.teardown(() => log.close());
  log.write('y'.repeat(20));
  t.equal(size(file), 20);
  t.equal(size(`${file}.1`), 90);
});

t.test('tailLog of missing files and of a file without final newline', async (t) => {
  const dir = t.testdir({ 'p.log': 'one\ntwo\nthree' });
  t.same(await tailLog(path.join(dir, 'none.log'), 5), []);
  t.same(await tailLog(path.join(dir, 'p.log'), 2), ['two', 'three']);
  t.same(await tailLog(path.join(dir, 'p.log'), 0), []);
});

t.test('tailLog across block boundaries', async (t) => {
  const dir = t.testdir({});
  const file = path.join(dir, 'big.log');
  const lines = Array.from({ length: 5000 }, (_, i) => `${i} ${'z'.repeat(i % 97)}`);
  writeFileSync(file, `${lines.join('\n')}\n`);
  t.same(await tailLog(file, 1200), lines.slice(-1200));
});

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

t.test('followLog sees appends, survives rotation, waits for a missing file', async (t) => {
  const dir = t.testdir({ 'f.log': 'old content\n' });
  const file = path.join(dir, 'f.log');
  let seen = '';
  const f = followLog(file, (s) => (seen += s), { intervalMs: 20 });
  t.teardown(() => f.close());
  await new Promise((r) => setTimeout(r, 100));
  appendFileSync(file, 'first\n');
  await until(() => seen.includes('first\n'));
  t.notMatch(seen, /old content/, 'starts at the end');
  // Written just before the rotation: still read from the renamed file.
  appendFileSync(file, 'before rotation\n');
  renameSync(file, `${file}.1`);
  writeFileSync(file, 'after rotation\n');
  await until(() => seen.includes('after rotation\n'));
  t.equal(seen, 'first\nbefore rotation\nafter rotation\n');

  let later = '';
  const missing = path.join(dir, 'later.log');
  const g = followLog(missing, (s) => (later += s), { intervalMs: 20 });
  t.teardown(() => g.close());
  await new Promise((r) => setTimeout(r, 60));
  writeFileSync(missing, 'hello\n');
  await until(() => later === 'hello\n');
  t.pass('a file created later is followed from its start');
});

t.test('followLog through a LogFile rotating under it loses nothing', async (t) => {
  const dir = t.testdir({});
  const file = path.join(dir, 'r.log');
  const log = new LogFile(file, 500);
  t.teardown(() => log.close());
  log.write('start\n');
  let seen = '';
  const f = followLog(file, (s) => (seen += s), { intervalMs: 10 });
  t.teardown(() => f.close());
  await new Promise((r) => setTimeout(r, 50));
  const expected: string[] = [];
  for (let i = 0; i < 40; i++) {
    const line = `n${i} ${'.'.repeat(30)}\n`;
    expected.push(line);
    log.write(line);
    // Slow enough that no rotation happens twice between two polls.
    if (i % 5 === 4) await until(() => seen.length >= expected.join('').length);
  }
  await until(() => seen.length >= expected.join('').length);
  t.equal(seen, expected.join(''));
});
