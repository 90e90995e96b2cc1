// One duration format for every flag (issue 23): 250ms, 5s, 2m, 1.5h, or a bare number in
// the unit the help names; the same one-line refusal everywhere; counts in the singular when 1.
import t from 'tap';
import { parseRetryAfter } from '../../src/cli/traffic.js';
import { formatMs, parseDuration } from '../../src/duration.js';
import { plural } from '../../src/words.js';
import { cli } from '../helpers/cli.js';
import { makeRoot } from '../helpers/root.js';

t.test('units, bare numbers and limits', async (t) => {
  t.equal(parseDuration('250ms', '--x'), 250);
  t.equal(parseDuration('5s', '--x'), 5000);
  t.equal(parseDuration('2m', '--x'), 120_000);
  t.equal(parseDuration('1.5h', '--x'), 5_400_000);
  t.equal(parseDuration('5', '--x'), 5000, 'a bare number is seconds by default');
  t.equal(parseDuration('0.5', '--x'), 500);
  t.equal(parseDuration('250', '--x', { bare: 'ms' }), 250, 'or the unit the flag names');
  t.equal(parseDuration(' 10s ', '--x'), 10_000, 'spaces around are ignored');
  for (const bad of ['', 'soon', '5d', '-5s', '5 seconds', '1e3']) {
    t.throws(() => parseDuration(bad, '--x'), { code: 'BG_USAGE', message: `--x: expected a duration like 250ms, 5s or 2m (a bare number is seconds), got "${bad}"` }, bad);
  }
  t.throws(() => parseDuration('2h', '--duration', { maxMs: 3_600_000 }), { code: 'BG_USAGE', message: '--duration: at most 1h, got "2h"' });
  t.equal(parseRetryAfter('120'), 120);
  t.equal(parseRetryAfter('2m'), 120);
  t.throws(() => parseRetryAfter('1.5s'), { message: /whole seconds/ });
  t.equal(formatMs(500), '500ms');
  t.equal(formatMs(90_000), '90s');
  t.equal(formatMs(7_200_000), '2h');
  t.equal(plural(1, 'request'), '1 request');
  t.equal(plural(0, 'request'), '0 requests');
  t.equal(plural(2, 'entry', 'entries'), '2 entries');
});

t.test('the CLI takes the same format for --watch, --timeout, --retry-after and verify --duration', async (t) => {
  const root = makeRoot(t);
  // Each is parsed before the server is asked: a good value gets as far as "no server", a bad one is refused first.
  for (const [args, flag] of [
    [['cutover', '--watch', '5'], null],
    [['pause', '--timeout', 'soon'], '--timeout'],
    [['verify', '--duration', '5m'], null],
    [['maintenance', 'on', '--retry-after', 'soon'], '--retry-after'],
  ] as const) {
    const r = await cli([...args, '--root', root]);
    if (flag === null) {
      t.equal(r.code, 1, `${args.join(' ')}: accepted, then no server`);
      t.match(r.stderr, /no bgproxy server is running/, args.join(' '));
    } else {
      t.equal(r.code, 2, args.join(' '));
      t.equal(r.stderr, `bgproxy: ${flag}: expected a duration like 250ms, 5s or 2m (a bare number is seconds), got "soon"`);
    }
  }
});
