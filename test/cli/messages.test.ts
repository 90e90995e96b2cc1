// What the CLI prints for a few states a newcomer meets (issue 23): a reload that only loaded
// a new certificate is not "config unchanged"; one waiting request is "1 request".
import t from 'tap';
import type { Status } from '../../src/bgproxy.js';
import { formatReload, formatTraffic } from '../../src/cli/ops.js';
import { formatHistory } from '../../src/deploy/history.js';

t.test('reload: a new certificate is reported even when the config did not change', async (t) => {
  t.equal(formatReload({ changed: [], atNextStart: [], notes: [] }), 'config unchanged\n');
  t.equal(
    formatReload({ changed: [], atNextStart: [], notes: ['tls: new certificate for live.test (new connections get it)'] }),
    'tls: new certificate for live.test (new connections get it)\nconfig otherwise unchanged\n',
  );
});

t.test('status: counts in the singular, the pause timeout as a duration', async (t) => {
  const traffic = {
    access: { live: null, next: null },
    maintenance: null,
    pause: { since: '2026-01-01T00:00:00.000Z', waiting: 1, timeoutMs: 30_000, timedOut: 0, refused: 0 },
    canary: null,
    lastCanary: null,
  };
  t.equal(
    formatTraffic({ traffic } as unknown as Status),
    'paused since 2026-01-01T00:00:00.000Z: 1 request waiting (up to 30s each), 0 timed out, 0 refused; bgproxy resume lets them go\n',
  );
});

t.test('history: canary, pause, resume and maintenance rows say what they did', async (t) => {
  const at = '2026-01-01T00:00:00.000Z';
  const rows = formatHistory([
    { time: at, action: 'canary', color: 'green', result: 'ok', durationMs: 0, percent: 10, was: 'blue' },
    { time: at, action: 'pause', color: 'blue', result: 'ok', durationMs: 0, timeoutMs: 30_000 },
    { time: at, action: 'resume', color: 'blue', result: 'ok', durationMs: 0, released: 1, pausedMs: 500 },
    { time: at, action: 'maintenance-on', color: 'blue', result: 'ok', durationMs: 0, retryAfterS: 120, page: 'built-in' },
  ]).split('\n');
  t.match(rows[1], /canary .* 10% of live traffic to green \(live: blue\)$/);
  t.match(rows[2], /pause .* live requests wait up to 30\.0s$/);
  t.match(rows[3], /resume .* 1 waiting request released$/);
  t.match(rows[4], /maintenance-on .* 503 with Retry-After 120, built-in page$/);
});
