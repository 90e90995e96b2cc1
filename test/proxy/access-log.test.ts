import { execFileSync } from 'node:child_process';
import { closeSync, createReadStream, openSync, readFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { createLogger } from '../../src/log.js';
import { AccessLog } from '../../src/proxy/access-log.js';

type Entry = [method: string, host: string, path: string, status: number, color: string, ms: number, upgrade: boolean, id: string];

/** The line as pino-style string building wrote it before the access log wrote bytes itself. */
function reference(bindings: string, time: number, [method, host, p, status, color, ms, upgrade, id]: Entry): string {
  const tail = (upgrade ? '"upgrade":true' : `"ms":${Math.round(ms * 10) / 10}`) + (id === '' ? '' : `,"id":${JSON.stringify(id)}`);
  return `{"level":30,"time":${time}${bindings},"component":"access","method":"${method}","host":${JSON.stringify(host)},"path":${JSON.stringify(p)},"status":${status},"color":"${color}",${tail}}`;
}

const entry = fc.tuple(
  fc.constantFrom('GET', 'POST', 'OPTIONS'),
  fc.oneof(fc.constantFrom('shop.test', 'www.shop.test'), fc.string({ unit: 'binary', maxLength: 40 })),
  fc.oneof(fc.webPath(), fc.string({ unit: 'binary', maxLength: 300 }), fc.string({ unit: 'binary-ascii', maxLength: 300 })),
  fc.constantFrom(0, 101, 200, 304, 404, 502),
  fc.constantFrom('blue', 'green'),
  fc.oneof(fc.double({ min: 0, max: 1e7, noNaN: true }), fc.constantFrom(0, 0.04, 0.05, 0.95, 12.35, 999.96)),
  fc.boolean(),
  // A request id: generated (32 hex), or a trusted proxy's well-formed one; none for lines written without.
  fc.oneof(fc.constant(''), fc.stringMatching(/^[0-9a-f]{32}$/), fc.stringMatching(/^[A-Za-z0-9._:+=/@-]{1,128}$/)),
);

function check(t: Test, bindings: string, lines: string[], entries: Entry[]): void {
  t.equal(lines.length, entries.length, 'one line per entry');
  for (const [i, line] of lines.entries()) {
    const e = entries[i] as Entry;
    const time = Number(/^\{"level":30,"time":(\d+),/.exec(line)?.[1]);
    const parsed = JSON.parse(line);
    if (line !== reference(bindings, time, e) || parsed.host !== e[1] || parsed.path !== e[2]) {
      t.equal(line, reference(bindings, time, e), `line ${i}`);
      return;
    }
  }
  t.pass(`${lines.length} lines as expected`);
}

t.test('lines are what pino-style string building wrote, escapes and all', async (t) => {
  let out = '';
  const dest = {
    write(s: string): void {
      out += s;
    },
  };
  const logger = pino({ base: { name: 'bgproxy' } }, dest);
  const log = new AccessLog(logger);
  t.teardown(() => log.close());
  const entries = fc.sample(fc.array(entry, { maxLength: 50 }), 200).flat();
  for (const e of entries) log.write(...e);
  log.flush();
  check(t, ',"name":"bgproxy"', out.split('\n').slice(0, -1), entries);
});

t.test("createLogger's destination takes the blocks as bytes, pino's lines whole between them", async (t) => {
  const file = path.join(t.testdir(), 'log');
  const logger = createLogger({ destination: openSync(file, 'w') }).child({ app: 'shöp"' });
  const log = new AccessLog(logger);
  t.teardown(() => log.close());
  const entries = fc.sample(fc.array(entry, { maxLength: 50 }), 200).flat();
  logger.info({ event: 'first' }, 'before');
  for (const e of entries.slice(0, 1000)) log.write(...e);
  logger.info({ event: 'between' }, 'between');
  for (const e of entries.slice(1000)) log.write(...e);
  log.flush();
  // The blocks are written asynchronously, one after the other: wait for the last.
  let lines: string[] = [];
  for (const until = Date.now() + 10_000; lines.length < entries.length + 2 && Date.now() < until; ) {
    await new Promise((r) => setImmediate(r));
    lines = readFileSync(file, 'utf8').split('\n').slice(0, -1);
  }
  const access = lines.filter((l) => l.includes(',"component":"access",'));
  t.same(
    lines.filter((l) => !access.includes(l)).map((l) => JSON.parse(l).event),
    ['first', 'between'],
  );
  check(t, ',"name":"bgproxy","app":"shöp\\""', access, entries);
});

t.test('a destination that cannot keep up: bounded memory, then one warning that counts every line dropped', async (t) => {
  // A FIFO nobody reads yet: writes block once the pipe's 64 kB are full, as a stuck stdout does.
  const fifo = path.join(t.testdir(), 'stdout');
  execFileSync('mkfifo', [fifo]);
  const fd = openSync(fifo, 'r+');
  t.teardown(() => closeSync(fd));
  const maxPendingBytes = 256 * 1024;
  const logger = createLogger({ destination: fd, maxPendingBytes });
  const log = new AccessLog(logger);
  t.teardown(() => log.close());
  const total = 20_000;
  for (let i = 0; i < total; i++) log.write('GET', 'shop.test', `/p/${i}`, 200, 'blue', 1.5, false, '0123456789abcdef0123456789abcdef');
  log.flush();

  // Now the reader comes: everything pending arrives, then the warning.
  const reader = createReadStream(fifo);
  t.teardown(() => reader.destroy());
  let out = '';
  const warning = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no warning within 10 s')), 10_000);
    reader.on('data', (d: Buffer | string) => {
      out += d.toString();
      const m = /^(\{"level":40,[^\n]*)\n/m.exec(out);
      if (m !== null) {
        clearTimeout(timer);
        resolve(JSON.parse(m[1]!) as Record<string, unknown>);
      }
    });
  });
  const lines = out.split('\n').filter((l) => l.includes('"component":"access"'));
  t.ok(lines.length > 0 && lines.length < total, `${lines.length} of ${total} lines written, the rest dropped`);
  const bytes = lines.reduce((n, l) => n + Buffer.byteLength(l) + 1, 0);
  // What waited: the block being written when the pipe filled (at most 72 kB) and the bound.
  t.ok(bytes <= maxPendingBytes + 72 * 1024, `${bytes} bytes waited: no more than the bound and the block in flight`);
  t.equal(warning.droppedLines, total - lines.length, 'the warning counts exactly the lines that never came');
  t.match(warning, { name: 'bgproxy', msg: /^log output fell behind: \d+ lines \(\d+ bytes\) dropped/ });
  // Lines that did come are whole, and the first ones (written before the pipe filled) in order.
  t.ok(lines.every((l) => JSON.parse(l).status === 200), 'every line that came is whole');
  t.equal(JSON.parse(lines[0]!).path, '/p/0');
});
