import fc from 'fast-check';
import t from 'tap';
import { classifyError, classifyStatus, percentileOfSorted, percentiles } from '../../src/verify/stats.js';

t.test('percentiles of known arrays (nearest rank)', async (t) => {
  const oneToHundred = Array.from({ length: 100 }, (_, i) => 100 - i);
  const p = percentiles(oneToHundred);
  t.match(p, { count: 100, min: 1, p50: 50, p90: 90, p99: 99, max: 100, mean: 50.5 });
  t.match(percentiles([7]), { p50: 7, p90: 7, p99: 7, max: 7, min: 7 });
  t.match(percentiles([]), { count: 0, p50: 0, p99: 0, max: 0, mean: 0 });
  t.match(percentiles([1, 2, 3, 4]), { p50: 2, p90: 4, p99: 4 });
  // A single slow request in 1000 is the max but not the p99.
  const mostlyFast = [...Array.from({ length: 999 }, () => 1), 500];
  t.match(percentiles(mostlyFast), { p50: 1, p99: 1, max: 500 });
  t.equal(percentileOfSorted([1, 2, 3], 0), 1);
  t.equal(percentileOfSorted([1, 2, 3], 100), 3);
});

t.test('percentiles are ordered, observed values, and monotone in p', async (t) => {
  const values = fc.array(fc.double({ min: 0, max: 1e5, noNaN: true }), { minLength: 1, maxLength: 300 });
  fc.assert(
    fc.property(values, (vs) => {
      const p = percentiles(vs);
      return p.min <= p.p50 && p.p50 <= p.p90 && p.p90 <= p.p99 && p.p99 <= p.max && vs.includes(p.p99);
    }),
  );
  fc.assert(
    fc.property(values, fc.double({ min: 0, max: 100, noNaN: true }), fc.double({ min: 0, max: 100, noNaN: true }), (vs, a, b) => {
      const sorted = [...vs].sort((x, y) => x - y);
      const [lo, hi] = a <= b ? [a, b] : [b, a];
      return percentileOfSorted(sorted, lo) <= percentileOfSorted(sorted, hi);
    }),
  );
  t.pass('properties hold');
});

t.test('errors are classified by kind', async (t) => {
  const err = (code: string, message = code) => Object.assign(new Error(message), { code });
  t.equal(classifyError(err('ECONNREFUSED')), 'connect');
  t.equal(classifyError(err('EHOSTUNREACH')), 'connect');
  t.equal(classifyError(err('ECONNRESET', 'socket hang up')), 'reset');
  t.equal(classifyError(err('EPIPE')), 'reset');
  t.equal(classifyError(new Error('socket hang up')), 'reset');
  t.equal(classifyError(err('ETIMEDOUT')), 'timeout');
  t.equal(classifyError(new Error('something odd')), 'other');
  t.equal(classifyError(null), 'other');
  t.equal(classifyStatus(200), null);
  t.equal(classifyStatus(204), null);
  t.equal(classifyStatus(302), 'non2xx');
  t.equal(classifyStatus(502), 'non2xx');
});
