import t from 'tap';
import { Backoff, DEFAULT_BACKOFF } from '../../src/supervisor/backoff.js';

t.test('doubles from 500 ms up to 30 s by default', async (t) => {
  const b = new Backoff();
  t.same(b.options, DEFAULT_BACKOFF);
  const delays = Array.from({ length: 9 }, () => b.next(0));
  t.same(delays, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
});

t.test('a run that stayed up resetAfterMs starts over', async (t) => {
  const b = new Backoff({ initialMs: 10, maxMs: 1000, resetAfterMs: 100 });
  t.same([b.next(0), b.next(99), b.next(5)], [10, 20, 40]);
  t.equal(b.next(100), 10, 'stable run resets');
  t.equal(b.next(0), 20);
  b.reset();
  t.equal(b.next(0), 10);
  t.equal(b.attempt, 1);
});

t.test('never overflows in a long crash loop', async (t) => {
  const b = new Backoff({ initialMs: 1, maxMs: 5000 });
  let last = 0;
  for (let i = 0; i < 2000; i++) last = b.next(0);
  t.equal(last, 5000);
});
