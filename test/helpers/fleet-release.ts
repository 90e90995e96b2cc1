// The starting point of every fleet release scenario (test/fleet/release-*.test.ts): the
// three-server fleet of test/helpers/fleet.ts with release v1 pushed, deployed and live
// on green everywhere, and, for the scenarios that need both colors, v2 deployed into blue.
// Each scenario is a file of its own so that one file stays well under tap's timeout on a
// slow, loaded machine (the three servers' ssh round trips dominate; the scenarios were
// once one file that ran into that timeout).
import type { Test } from 'tap';
import { type FleetSetup, startFleet } from './fleet.js';
import { get } from './http.js';

export interface ReleasedFleet extends FleetSetup {
  /** What each server's live host answers, in fleet order. */
  lives(): Promise<string[]>;
  /** What each server's next host answers, in fleet order. */
  nexts(): Promise<string[]>;
}

/**
 * Starts the fleet and makes v1 live on green on every server; with `next`, deploys v2
 * into blue too (not cut over). Asserts each step, so that a scenario fails at its setup
 * with the fleet's own output rather than later with a puzzling answer.
 */
export async function startReleasedFleet(t: Test, opts: { next?: boolean } = {}): Promise<ReleasedFleet> {
  const f = await startFleet(t);
  const lives = (): Promise<string[]> => Promise.all(f.servers.map((s) => get(s.serve.port, 'shop.test')));
  const nexts = (): Promise<string[]> => Promise.all(f.servers.map((s) => get(s.serve.port, 'next.shop.test')));
  f.commit('v1');
  const push = await f.fleet(['push']);
  t.equal(push.code, 0, `${push.stderr}\nsshd: ${f.servers.map((s) => s.sshd.log()).join('\n')}`);
  t.match(push.stdout, /pushed [0-9a-f]{7} to every server/);
  const first = await f.fleet(['deploy', '--cutover']);
  t.equal(first.code, 0, first.stdout + first.stderr);
  t.same(await lives(), ['green v1', 'green v1', 'green v1'], 'release 1 is live everywhere');
  if (opts.next) {
    f.commit('v2');
    t.equal((await f.fleet(['push'])).code, 0);
    const d = await f.fleet(['deploy']);
    t.equal(d.code, 0, d.stdout + d.stderr);
    t.same(await nexts(), ['blue v2', 'blue v2', 'blue v2'], 'release 2 is next everywhere');
  }
  return { ...f, lives, nexts };
}
