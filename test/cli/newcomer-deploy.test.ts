// A newcomer's first deploys (issue 23): a wrong --from names git's reason (not its advice
// "and the repository exists."), an empty repo.git names the push that fills it, and
// deploy --cutover does not advise "go live: bgproxy cutover" after going live.
import path from 'node:path';
import t from 'tap';
import { gitIn, WorkRepo } from '../deploy/git-repos.js';
import { colorHandler, startBackend } from '../helpers/backend.js';
import { cli } from '../helpers/cli.js';
import { startProxy } from '../helpers/proxy.js';
import { tempDir } from '../helpers/root.js';

t.test('deploy: --from a missing path, an empty repo.git, then deploy --cutover', async (t) => {
  const blue = await startBackend(t, colorHandler('blue'));
  const green = await startBackend(t, colorHandler('green'));
  const p = await startProxy(t, { blue, green });
  const nope = path.join(tempDir(t), 'nope');
  const missing = await cli(['deploy', '--from', nope, '--root', p.root]);
  t.equal(missing.code, 1);
  t.equal(missing.stderr.split('\n')[0], `bgproxy: deploy into green: fetch failed: could not read ${nope}: '${nope}' does not appear to be a git repository`);

  const bare = path.join(p.root, 'repo.git');
  const empty = await cli(['deploy', '--root', p.root]);
  t.equal(empty.code, 1);
  t.equal(
    empty.stderr.split('\n')[0],
    `bgproxy: deploy into green: resolve failed: the source has no default branch to deploy (empty, or HEAD names a missing branch): push your code first (git push ${bare} HEAD:refs/heads/main), or name a commit`,
  );

  const repo = WorkRepo.init(path.join(tempDir(t), 'app'));
  repo.commit('v1', { 'README.md': 'v1\n' });
  gitIn(repo.dir, 'push', '--quiet', bare, 'HEAD:refs/heads/main');
  const live = await cli(['deploy', '--cutover', '--root', p.root]);
  t.equal(live.code, 0, live.stderr);
  t.match(live.stdout, new RegExp(`^green now runs [0-9a-f]{7} "v1" - preview: http://next\\.live\\.test:${p.port}/$`, 'm'));
  t.notMatch(live.stdout, /go live/, 'it is live already');
  t.match(live.stdout, /^live: green \(was blue\), drained \d+ requests? in \d+ ms$/m);
});
