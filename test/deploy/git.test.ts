import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import type { Config } from '../../src/config.js';
import {
  currentCommit,
  fetchRelease,
  type GitStep,
  isDirty,
  isLocalWorkingCopy,
  isUrl,
  resolveCommit,
  resolveSource,
} from '../../src/deploy/git.js';
import { gitIn, initBare, WorkRepo } from './git-repos.js';

/** A work repo with three commits on main (v1, v2 tagged, v3) and a branch "feature". */
function project(dir: string) {
  const repo = WorkRepo.init(path.join(dir, 'src'));
  const v1 = repo.commit('v1', { 'app.txt': 'v1\n', '.gitignore': 'node_modules/\n' });
  const v2 = repo.commit('v2: add extra', { 'app.txt': 'v2\n', 'extra.txt': 'extra\n' });
  repo.git('tag', '-a', '-m', 'release 2', 'v2.0');
  repo.git('checkout', '-q', '-b', 'feature');
  const feature = repo.commit('feature work', { 'app.txt': 'feature\n' });
  repo.git('checkout', '-q', 'main');
  const v3 = repo.commit('v3: drop extra', { 'app.txt': 'v3\n', 'extra.txt': null });
  return { repo, v1, v2, v3, feature };
}

const read = (dir: string, file: string): string => readFileSync(path.join(dir, file), 'utf8');

t.test('deploys from a local repo path: default branch, sha, short sha, tag, branch', async (t) => {
  const dir = t.testdir();
  const { repo, v1, v2, v3, feature } = project(dir);
  const checkout = path.join(dir, 'blue', 'repo');
  t.equal(await currentCommit(checkout), null, 'nothing checked out yet');

  const tip = await fetchRelease(checkout, repo.dir);
  t.same(tip, { commit: v3, shortCommit: v3.slice(0, 7), subject: 'v3: drop extra', ref: 'refs/heads/main' });
  t.equal(read(checkout, 'app.txt'), 'v3\n');
  t.equal(await currentCommit(checkout), v3);

  const bySha = await fetchRelease(checkout, repo.dir, v1);
  t.equal(bySha.commit, v1);
  t.equal(bySha.ref, v1);
  t.equal(read(checkout, 'app.txt'), 'v1\n');

  const byShort = await fetchRelease(checkout, repo.dir, v2.slice(0, 8));
  t.equal(byShort.commit, v2);
  t.equal(read(checkout, 'extra.txt'), 'extra\n');

  const byTag = await fetchRelease(checkout, repo.dir, 'v2.0');
  t.same([byTag.commit, byTag.ref], [v2, 'refs/tags/v2.0'], 'an annotated tag resolves to its commit');

  const byBranch = await fetchRelease(checkout, repo.dir, 'feature');
  t.same([byBranch.commit, byBranch.ref, byBranch.subject], [feature, 'refs/heads/feature', 'feature work']);
  t.equal((await fetchRelease(checkout, repo.dir, 'refs/heads/main')).commit, v3);
});

t.test('reset moves between commits both ways and clean removes what the recipe left', async (t) => {
  const dir = t.testdir();
  const { repo, v2, v3 } = project(dir);
  const checkout = path.join(dir, 'green', 'repo');

  await fetchRelease(checkout, repo.dir, v2);
  t.ok(existsSync(path.join(checkout, 'extra.txt')));
  writeFileSync(path.join(checkout, 'stale.pyc'), 'old build');
  mkdirSync(path.join(checkout, 'node_modules', 'x'), { recursive: true });
  writeFileSync(path.join(checkout, 'node_modules', 'x', 'index.js'), 'ignored, still stale');
  writeFileSync(path.join(checkout, 'app.txt'), 'edited on the server');

  await fetchRelease(checkout, repo.dir, v3);
  t.equal(read(checkout, 'app.txt'), 'v3\n', 'local edits are overwritten');
  t.notOk(existsSync(path.join(checkout, 'extra.txt')), 'a file deleted by the commit is gone');
  t.notOk(existsSync(path.join(checkout, 'stale.pyc')), 'an untracked file is gone');
  t.notOk(existsSync(path.join(checkout, 'node_modules')), 'an ignored directory is gone');

  await fetchRelease(checkout, repo.dir, v2);
  t.equal(read(checkout, 'extra.txt'), 'extra\n', 'and back again');
  t.equal(gitIn(checkout, 'status', '--porcelain'), '', 'the checkout is clean');
});

t.test('deploys from a bare repo.git after a git push', async (t) => {
  const dir = t.testdir();
  const { repo, v2, v3 } = project(dir);
  const bare = initBare(path.join(dir, 'root', 'repo.git'));
  // The recipe's push: the bare repo's HEAD still names "master", people push "main".
  repo.git('push', '-q', bare, 'HEAD:refs/heads/main');
  const checkout = path.join(dir, 'root', 'green', 'repo');

  const tip = await fetchRelease(checkout, bare);
  t.same([tip.commit, tip.ref], [v3, 'refs/heads/main'], 'the only branch is the default');

  repo.git('push', '-q', bare, 'v2.0', 'feature');
  t.equal((await fetchRelease(checkout, bare, 'v2.0')).commit, v2, 'a pushed tag');
  await t.rejects(fetchRelease(checkout, bare), { code: 'BG_DEPLOY', message: /^resolve failed: .*default branch/ },
    'two branches and a HEAD naming neither: ambiguous, so refused');

  gitIn(bare, 'symbolic-ref', 'HEAD', 'refs/heads/main');
  const next = repo.commit('v4', { 'app.txt': 'v4\n' });
  repo.git('push', '-q', bare, 'main');
  t.equal((await fetchRelease(checkout, bare)).commit, next, 'HEAD names main: its new tip');
  t.equal(read(checkout, 'app.txt'), 'v4\n');

  repo.git('push', '-q', bare, ':feature');
  await t.rejects(fetchRelease(checkout, bare, 'feature'), { message: /^resolve failed/ }, 'a deleted branch is pruned');
});

t.test('a detached HEAD in a working copy is deployed by default', async (t) => {
  const dir = t.testdir();
  const { repo, v1 } = project(dir);
  repo.git('checkout', '-q', '--detach', v1);
  const off = repo.commit('on no branch', { 'app.txt': 'detached\n' });
  const release = await fetchRelease(path.join(dir, 'repo'), repo.dir);
  t.same([release.commit, release.ref], [off, 'HEAD']);
});

t.test('errors name the step', async (t) => {
  const dir = t.testdir();
  const { repo } = project(dir);
  const checkout = path.join(dir, 'repo');
  await t.rejects(fetchRelease(checkout, repo.dir, 'no-such-thing'), {
    code: 'BG_DEPLOY',
    message: /^resolve failed: no commit, tag or branch "no-such-thing"/,
  });
  t.equal(await currentCommit(checkout), null, 'nothing was checked out');
  await t.rejects(resolveCommit(checkout, 'deadbeef'), { code: 'BG_DEPLOY', message: /^resolve failed/ });
  await t.rejects(resolveCommit(checkout, '--upload-pack=touch /tmp/x'), { message: /^resolve failed/ });
  await t.rejects(resolveCommit(checkout, 'main..feature'), { message: /^resolve failed/ });

  const missing = path.join(dir, 'nowhere');
  const err = await fetchRelease(checkout, missing).catch((e: unknown) => e);
  t.match(err, { code: 'BG_DEPLOY', message: /^fetch failed: .*nowhere/ });
  t.match((err as { detail?: string }).detail, /nowhere/, 'detail carries git stderr');
  await t.rejects(fetchRelease(checkout, 'file:///definitely/not/here.git'), { message: /^fetch failed/ });
  const empty = initBare(path.join(dir, 'empty.git'));
  await t.rejects(fetchRelease(checkout, empty), { message: /^resolve failed: the source has no default branch/ });
});

t.test('a git lock file left by a killed deploy does not block the next one', async (t) => {
  const dir = t.testdir();
  const { repo, v1, v3 } = project(dir);
  const checkout = path.join(dir, 'repo');
  await fetchRelease(checkout, repo.dir, v1);
  writeFileSync(path.join(checkout, '.git', 'index.lock'), '');
  mkdirSync(path.join(checkout, '.git', 'refs', 'bgproxy', 'source', 'heads'), { recursive: true });
  writeFileSync(path.join(checkout, '.git', 'refs', 'bgproxy', 'source', 'heads', 'main.lock'), '');
  t.equal((await fetchRelease(checkout, repo.dir)).commit, v3);
});

t.test('onStep reports each step with its duration', async (t) => {
  const dir = t.testdir();
  const { repo } = project(dir);
  const steps: GitStep[] = [];
  await fetchRelease(path.join(dir, 'repo'), repo.dir, undefined, {
    onStep: (step, ms) => {
      t.ok(ms >= 0);
      steps.push(step);
    },
  });
  t.same(steps, ['fetch', 'resolve', 'reset', 'clean'], 'no submodules step without .gitmodules');
});

t.test('submodules are checked out (relative URL) and cleaned', async (t) => {
  const dir = t.testdir();
  const lib = WorkRepo.init(path.join(dir, 'lib'));
  lib.commit('lib v1', { 'lib.txt': 'lib v1\n' });
  const app = WorkRepo.init(path.join(dir, 'app'));
  app.commit('app', { 'app.txt': 'app\n' });
  app.git('-c', 'protocol.file.allow=always', 'submodule', 'add', '-q', '../lib', 'vendor/lib');
  app.git('commit', '-q', '-m', 'add lib');
  const checkout = path.join(dir, 'repo');
  const steps: GitStep[] = [];
  await fetchRelease(checkout, app.dir, undefined, { onStep: (s) => steps.push(s) });
  t.equal(read(checkout, 'vendor/lib/lib.txt'), 'lib v1\n');
  t.equal(steps.at(-1), 'submodules');
  writeFileSync(path.join(checkout, 'vendor', 'lib', 'junk'), 'x');
  await fetchRelease(checkout, app.dir);
  t.notOk(existsSync(path.join(checkout, 'vendor', 'lib', 'junk')));
});

t.test('dirty working copy detection', async (t) => {
  const dir = t.testdir();
  const { repo } = project(dir);
  const bare = initBare(path.join(dir, 'repo.git'));
  t.equal(await isLocalWorkingCopy(repo.dir), true);
  t.equal(await isLocalWorkingCopy(bare), false);
  t.equal(await isLocalWorkingCopy('ssh://example.invalid/x.git'), false);
  t.equal(await isLocalWorkingCopy(path.join(dir, 'missing')), false);

  t.equal(await isDirty(repo.dir), false);
  writeFileSync(path.join(repo.dir, 'app.txt'), 'changed');
  t.equal(await isDirty(repo.dir), true, 'a modified tracked file');
  repo.git('checkout', '-q', '--', 'app.txt');
  writeFileSync(path.join(repo.dir, 'new.txt'), 'forgot to add');
  t.equal(await isDirty(repo.dir), true, 'an untracked file');
  writeFileSync(path.join(repo.dir, '.gitignore'), 'node_modules/\nnew.txt\n');
  repo.git('commit', '-q', '-am', 'ignore new.txt');
  t.equal(await isDirty(repo.dir), false, 'ignored files do not count');
  t.equal(await isDirty(bare), false, 'a bare repo is never dirty');
});

t.test('resolveSource: --from, else app.repo, else ROOT/repo.git', async (t) => {
  const config = (repo: string | null): Config => ({ root: '/srv/shop', app: { repo } }) as unknown as Config;
  t.equal(resolveSource(config(null)), '/srv/shop/repo.git');
  t.equal(resolveSource(config('/srv/git/shop.git')), '/srv/git/shop.git');
  t.equal(resolveSource(config('repo2.git')), '/srv/shop/repo2.git', 'app.repo relative to the root');
  t.equal(resolveSource(config('git@github.com:me/shop.git')), 'git@github.com:me/shop.git');
  t.equal(resolveSource(config(null), 'https://example.com/shop.git'), 'https://example.com/shop.git');
  t.equal(resolveSource(config('/x'), 'work/shop'), path.resolve('work/shop'), '--from relative to cwd');
  t.ok(isUrl('ssh://host/x') && isUrl('host:x.git') && isUrl('file:///x'));
  t.notOk(isUrl('/a:b') || isUrl('./a:b') || isUrl('repo.git'));
});

t.test('works when run from a git hook (GIT_DIR and GIT_WORK_TREE set to the source)', async (t) => {
  const dir = t.testdir();
  const { repo, v3 } = project(dir);
  const saved = { GIT_DIR: process.env.GIT_DIR, GIT_WORK_TREE: process.env.GIT_WORK_TREE };
  process.env.GIT_DIR = path.join(repo.dir, '.git');
  process.env.GIT_WORK_TREE = repo.dir;
  t.teardown(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });
  const checkout = path.join(dir, 'repo');
  t.equal((await fetchRelease(checkout, repo.dir)).commit, v3);
  t.equal(await currentCommit(checkout), v3);
  t.equal(await isDirty(repo.dir), false);
});
