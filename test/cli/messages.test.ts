// What the CLI prints for a few states a newcomer meets (issue 23): a reload that only loaded
// a new certificate is not "config unchanged"; one waiting request is "1 request".
import t from 'tap';
import type { Status } from '../../src/bgproxy.js';
import { formatReload, formatTraffic } from '../../src/cli/ops.js';

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
