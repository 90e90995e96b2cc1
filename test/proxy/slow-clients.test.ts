// Issue 20's measurement as a test: six slow clients against a real gunicorn with two sync
// workers, and 20 ordinary requests sent meanwhile. With buffering (the default) bgproxy
// holds the slow clients and the workers stay free; without it the same test fails, which
// shows that it measures what it claims.
import t from 'tap';
import { freePort } from '../helpers/ports.js';
import { startProxy } from '../helpers/proxy.js';
import { noGunicorn, ordinaryRequests, slowReaders, slowUploaders, startGunicorn } from '../helpers/slow-clients.js';

const scenarios = [
  { name: '6 clients read an 8 MB answer at ~20 kB/s', start: (port: number) => slowReaders(port, 6) },
  { name: '6 clients upload 1 MB at ~20 kB/s', start: (port: number) => slowUploaders(port, 6) },
];

for (const s of scenarios) {
  for (const on of [true, false]) {
    t.test(`${s.name}, buffering ${on ? 'on' : 'off'}`, { skip: noGunicorn ?? false }, async (t) => {
      const app = await startGunicorn(t);
      const p = await startProxy(t, {
        blue: { port: app.port },
        green: { port: await freePort() },
        settings: { buffering: { requests: on, responses: on } },
      });
      const slow = s.start(p.port);
      t.teardown(() => slow.stop());
      // Give the slow clients time to reach the app (and, unbuffered, to take both workers).
      await new Promise((r) => setTimeout(r, 1000));
      const answered = await ordinaryRequests(p.port, 20, 2000);
      const moved = slow.moved.reduce((a, b) => a + b, 0);
      slow.stop();
      t.comment(`buffering ${on ? 'on' : 'off'}: ${answered}/20 answered within 2 s; slow clients moved ${Math.round(moved / 1000)} kB`);
      t.ok(moved > 0, 'the slow clients were at work');
      if (on) t.ok(answered >= 19, `at least 19/20 ordinary requests answered within 2 s (${answered})`);
      else t.ok(answered < 19, `without buffering the slow clients hold the workers (${answered}/20)`);
    });
  }
}
