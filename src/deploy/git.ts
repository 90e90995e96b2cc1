// Seeding a color's checkout from a git SOURCE (gitric's git_seed + git_reset, done on
// the server): fetch every branch and tag into a private namespace of ROOT/COLOR/repo,
// resolve the commit there, then reset, clean and update submodules. Every git call goes
// through git() so the environment, the timeout and the error shape are the same.

import type { Dirent } from 'node:fs';
import { existsSync } from 'node:fs';
import { mkdir, readdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config.js';
import { BgError } from '../errors.js';

export type GitStep = 'fetch' | 'resolve' | 'reset' | 'clean' | 'submodules';

export interface Release {
  /** Full sha of the commit checked out. */
  commit: string;
  shortCommit: string;
  /** First line of the commit message. */
  subject: string;
  /** What COMMIT named in SOURCE: "refs/heads/main", "refs/tags/v1", or the sha itself. */
  ref: string;
}

export interface GitOptions {
  /** Per git call; default 10 minutes (a first fetch of a big repository is slow). */
  timeoutMs?: number;
}

export interface FetchReleaseOptions extends GitOptions {
  /** Called after each step that ran, with its duration, for progress output. */
  onStep?: (step: GitStep, ms: number) => void;
}

const NS = 'refs/bgproxy/source';
const DEFAULT_TIMEOUT_MS = 600_000;
const TAIL_LINES = 20;

// Inherited from a git hook (e.g. a post-receive hook in repo.git that runs `bgproxy
// deploy`), these would point every git call at the wrong repository.
const REPO_ENV = [
  'GIT_DIR',
  'GIT_WORK_TREE',
  'GIT_INDEX_FILE',
  'GIT_OBJECT_DIRECTORY',
  'GIT_ALTERNATE_OBJECT_DIRECTORIES',
  'GIT_QUARANTINE_PATH',
  'GIT_COMMON_DIR',
  'GIT_PREFIX',
  'GIT_NAMESPACE',
];

/**
 * env without the variables that point git at a particular repository. Commands run by a
 * deploy (install, hooks) get this too, so their own git calls see their own checkout.
 */
export function withoutGitRepoEnv<T extends Record<string, string | undefined>>(env: T): T {
  const out = { ...env };
  for (const k of REPO_ENV) delete out[k];
  return out;
}

interface GitResult {
  ok: boolean;
  stdout: string;
  stderr: string;
  /** One line saying why the call failed; empty when ok. */
  why: string;
}

/** Runs one git command; never throws (callers turn a failure into their step's error). */
async function git(args: string[], opts: { cwd: string; timeoutMs?: number }): Promise<GitResult> {
  const env: Record<string, string | undefined> = withoutGitRepoEnv(process.env);
  env.GIT_TERMINAL_PROMPT = '0';
  // Never look for a repository above cwd: a color's repo/ inside some other checkout
  // must not be mistaken for it before it is initialised.
  env.GIT_CEILING_DIRECTORIES = path.dirname(path.resolve(opts.cwd));
  // ssh would ask for a password on the terminal and hang the deploy.
  if (env.GIT_SSH_COMMAND === undefined && env.GIT_SSH === undefined) env.GIT_SSH_COMMAND = 'ssh -o BatchMode=yes';
  const { execa } = await import('execa');
  const r = await execa('git', args, {
    cwd: opts.cwd,
    env,
    extendEnv: false,
    reject: false,
    stdin: 'ignore',
    timeout: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    stripFinalNewline: true,
  });
  const stderr = String(r.stderr ?? '');
  const ok = r.exitCode === 0 && !r.timedOut && !r.failed;
  let why = '';
  if (!ok) {
    // git's first "fatal:" line says what went wrong; the last is often advice ("and the repository exists.").
    const lines = stderr.trim().split('\n').filter(Boolean);
    const last = lines.find((l) => /^(fatal|error): /.test(l))?.replace(/^(fatal|error): /, '') ?? lines.at(-1);
    if (r.timedOut) why = `git ${args[0]} timed out after ${Math.round((opts.timeoutMs ?? DEFAULT_TIMEOUT_MS) / 1000)}s`;
    else if (r.exitCode === undefined) why = r.shortMessage ?? `git ${args[0]} could not run`;
    else why = last ?? `git ${args[0]} exited with code ${r.exitCode}`;
  }
  return { ok, stdout: String(r.stdout ?? ''), stderr, why };
}

function stepError(step: GitStep, why: string, stderr = ''): BgError {
  const tail = stderr.trim().split('\n').slice(-TAIL_LINES).join('\n');
  return new BgError('BG_DEPLOY', `${step} failed: ${why}`, tail ? { detail: tail } : undefined);
}

async function must(step: GitStep, args: string[], opts: { cwd: string; timeoutMs?: number }): Promise<string> {
  const r = await git(args, opts);
  if (!r.ok) throw stepError(step, r.why, r.stderr);
  return r.stdout;
}

/** True for anything git treats as a URL (scheme://… or scp-like user@host:path), not a path. */
export function isUrl(source: string): boolean {
  if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(source)) return true;
  const colon = source.indexOf(':');
  const slash = source.indexOf('/');
  return colon > 0 && (slash === -1 || colon < slash);
}

/**
 * Where to deploy from: --from, else config.app.repo, else ROOT/repo.git. Local paths come
 * back absolute (--from relative to the current directory, app.repo relative to the root).
 */
export function resolveSource(config: Config, from?: string): string {
  if (from !== undefined && from !== '') return isUrl(from) ? from : path.resolve(from);
  const repo = config.app.repo;
  if (repo !== null) return isUrl(repo) ? repo : path.resolve(config.root, repo);
  return path.join(config.root, 'repo.git');
}

/** True when SOURCE is a local non-bare repository (one a person edits). */
export async function isLocalWorkingCopy(source: string): Promise<boolean> {
  if (isUrl(source) || !existsSync(source)) return false;
  const r = await git(['rev-parse', '--is-inside-work-tree'], { cwd: source, timeoutMs: 30_000 });
  return r.ok && r.stdout.trim() === 'true';
}

/**
 * True when the working copy at SOURCE has uncommitted changes, untracked files included
 * (gitric's guard: deploying HEAD from it would not deploy what the person sees). False
 * for a bare repository or a URL.
 */
export async function isDirty(source: string): Promise<boolean> {
  if (!(await isLocalWorkingCopy(source))) return false;
  const r = await git(['status', '--porcelain'], { cwd: source, timeoutMs: 60_000 });
  if (!r.ok) throw new BgError('BG_DEPLOY', `cannot read the status of ${source}: ${r.why}`, { detail: r.stderr });
  return r.stdout.trim() !== '';
}

/** The commit checked out in repoDir, or null when it is not a repository yet. */
export async function currentCommit(repoDir: string): Promise<string | null> {
  if (!existsSync(path.join(repoDir, '.git'))) return null;
  const r = await git(['rev-parse', '--verify', '--quiet', 'HEAD^{commit}'], { cwd: repoDir, timeoutMs: 30_000 });
  return r.ok && r.stdout.trim() !== '' ? r.stdout.trim() : null;
}

/**
 * Makes repoDir a repository (non-bare) if it is not one, and fetches every branch and
 * tag of SOURCE into refs/bgproxy/source/{heads,tags}/*, pruning what SOURCE deleted.
 * refs/bgproxy/source/HEAD records SOURCE's default branch (a symbolic ref to it), or its
 * commit when SOURCE's HEAD is detached; it is absent when SOURCE has no usable HEAD and
 * more than one branch. Errors name the step 'fetch'.
 */
export async function fetchSource(repoDir: string, source: string, opts: GitOptions = {}): Promise<void> {
  const src = isUrl(source) ? source : path.resolve(source);
  const run = { cwd: repoDir, timeoutMs: opts.timeoutMs };
  await ensureRepo(repoDir);
  await clearStaleGitLocks(repoDir);
  // Relative submodule URLs resolve against the default remote's URL.
  await must('fetch', ['config', 'remote.origin.url', src], run);

  const head = await lsRemoteHead(repoDir, src, opts);
  const refspecs = [`+refs/heads/*:${NS}/heads/*`, `+refs/tags/*:${NS}/tags/*`];
  // A detached HEAD (a working copy) may be on no branch; fetch its commit too.
  if (head.sha !== null && head.symref === null) refspecs.push('HEAD');
  const r = await git(['fetch', '--quiet', '--prune', '--no-tags', '--', src, ...refspecs], run);
  if (!r.ok) throw stepError('fetch', `could not fetch from ${src}: ${r.why}`, r.stderr);

  const defaultRef = `${NS}/HEAD`;
  const branches = (await must('fetch', ['for-each-ref', '--format=%(refname)', `${NS}/heads/`], run))
    .split('\n')
    .filter(Boolean);
  const target = head.symref?.startsWith('refs/heads/') ? `${NS}/heads/${head.symref.slice('refs/heads/'.length)}` : null;
  if (target !== null && branches.includes(target)) {
    await must('fetch', ['symbolic-ref', defaultRef, target], run);
  } else if (head.sha !== null && head.symref === null) {
    await must('fetch', ['update-ref', '--no-deref', defaultRef, head.sha], run);
  } else if (branches.length === 1 && branches[0] !== undefined) {
    // e.g. a bare repo.git whose HEAD names "master" while people push "main".
    await must('fetch', ['symbolic-ref', defaultRef, branches[0]], run);
  } else {
    await git(['update-ref', '--no-deref', '-d', defaultRef], run);
  }
}

/** SOURCE's HEAD: the branch it names (if symbolic) and its commit (null if unborn). */
async function lsRemoteHead(
  repoDir: string,
  source: string,
  opts: GitOptions,
): Promise<{ symref: string | null; sha: string | null }> {
  const r = await git(['ls-remote', '--symref', '--', source, 'HEAD'], { cwd: repoDir, timeoutMs: opts.timeoutMs });
  if (!r.ok) throw stepError('fetch', `could not read ${source}: ${r.why}`, r.stderr);
  let symref: string | null = null;
  let sha: string | null = null;
  for (const line of r.stdout.split('\n')) {
    const m = /^ref: (\S+)\tHEAD$/.exec(line);
    if (m?.[1] !== undefined) symref = m[1];
    const s = /^([0-9a-f]{40,64})\tHEAD$/.exec(line);
    if (s?.[1] !== undefined) sha = s[1];
  }
  return { symref, sha };
}

async function ensureRepo(repoDir: string): Promise<void> {
  if (existsSync(path.join(repoDir, '.git'))) return;
  await mkdir(repoDir, { recursive: true });
  await must('fetch', ['init', '--quiet'], { cwd: repoDir, timeoutMs: 30_000 });
}

// A git process killed mid-step (a deploy SIGKILLed) leaves *.lock files that make every
// later call fail. The caller holds the root's deploy lock, so no live git uses them.
async function clearStaleGitLocks(repoDir: string): Promise<void> {
  const gitDir = path.join(repoDir, '.git');
  const remove = async (dir: string, recurse: boolean): Promise<void> => {
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (e.isDirectory() && recurse) await remove(p, true);
      else if (e.isFile() && e.name.endsWith('.lock')) await unlink(p).catch(() => {});
    }
  };
  await remove(gitDir, false);
  await remove(path.join(gitDir, 'refs'), true);
}

const FULL_SHA = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/i;
const SHORT_SHA = /^[0-9a-f]{4,63}$/i;

/**
 * Resolves COMMIT among what fetchSource fetched: a full sha, a tag, a branch, a short sha
 * (in git's order: a full sha first, then tags, then branches, then abbreviations), or
 * "refs/heads/X" / "refs/tags/X". Without COMMIT: the tip of SOURCE's default branch.
 * Errors name the step 'resolve'.
 */
export async function resolveCommit(repoDir: string, commitish?: string, opts: GitOptions = {}): Promise<Release> {
  const run = { cwd: repoDir, timeoutMs: opts.timeoutMs };
  const candidates: { rev: string; ref: string }[] = [];
  if (commitish === undefined || commitish === '') {
    const sym = await git(['symbolic-ref', '--quiet', `${NS}/HEAD`], run);
    const ref = sym.ok ? `refs/heads/${sym.stdout.trim().slice(`${NS}/heads/`.length)}` : 'HEAD';
    candidates.push({ rev: `${NS}/HEAD`, ref });
  } else {
    // Refuse what git would read as an option or a revision expression.
    if (commitish.startsWith('-') || !/^[A-Za-z0-9._/+@-]+$/.test(commitish) || commitish.includes('..')) {
      throw stepError('resolve', `"${commitish}" is not a commit, tag or branch name`);
    }
    const heads = commitish.startsWith('refs/heads/');
    const tags = commitish.startsWith('refs/tags/');
    const name = commitish.replace(/^refs\/(?:heads|tags)\//, '');
    if (FULL_SHA.test(commitish)) candidates.push({ rev: commitish.toLowerCase(), ref: commitish.toLowerCase() });
    if (!heads) candidates.push({ rev: `${NS}/tags/${name}`, ref: `refs/tags/${name}` });
    if (!tags) candidates.push({ rev: `${NS}/heads/${name}`, ref: `refs/heads/${name}` });
    if (!heads && !tags && !FULL_SHA.test(commitish) && SHORT_SHA.test(commitish)) {
      candidates.push({ rev: commitish.toLowerCase(), ref: '' });
    }
  }
  for (const c of candidates) {
    const r = await git(['rev-parse', '--verify', '--quiet', `${c.rev}^{commit}`], run);
    if (!r.ok) continue;
    const sha = r.stdout.trim();
    const info = await must('resolve', ['log', '-1', '--format=%H%x00%h%x00%s', sha], run);
    const [commit = sha, shortCommit = sha.slice(0, 7), subject = ''] = info.split('\0');
    return { commit, shortCommit, subject, ref: c.ref || commit };
  }
  if (commitish === undefined || commitish === '') {
    // A new root's repo.git is empty until the first push: say which push fills it.
    const src = (await git(['config', 'remote.origin.url'], run)).stdout.trim() || 'the source';
    throw stepError('resolve', `the source has no default branch to deploy (empty, or HEAD names a missing branch): push your code first (git push ${src} HEAD:refs/heads/main), or name a commit`);
  }
  const ambiguous = SHORT_SHA.test(commitish)
    ? (await git(['rev-parse', '--verify', `${commitish}^{commit}`], run)).stderr.includes('ambiguous')
    : false;
  throw stepError('resolve', ambiguous ? `"${commitish}" is an ambiguous short sha` : `no commit, tag or branch "${commitish}" in the source`);
}

/**
 * Makes repoDir's files exactly COMMIT: `git reset --hard` on a detached HEAD, `git clean
 * -ffdx` (removing ignored files too: a stale build or node_modules must not survive),
 * then submodules when .gitmodules exists. Errors name the step.
 */
export async function checkout(repoDir: string, commit: string, opts: FetchReleaseOptions = {}): Promise<void> {
  const run = { cwd: repoDir, timeoutMs: opts.timeoutMs };
  await clearStaleGitLocks(repoDir);
  await timed('reset', opts, async () => {
    await must('reset', ['update-ref', '--no-deref', 'HEAD', commit], run);
    await must('reset', ['reset', '--hard', '--quiet', commit], run);
  });
  await timed('clean', opts, () => must('clean', ['clean', '-ffdx', '--quiet'], run));
  if (!existsSync(path.join(repoDir, '.gitmodules'))) return;
  // The source is the operator's own code, about to be run anyway: local submodule
  // paths are fine (git >= 2.38.1 refuses the file transport for submodules by default).
  const sub = ['-c', 'protocol.file.allow=always', 'submodule'];
  await timed('submodules', opts, async () => {
    await must('submodules', [...sub, 'sync', '--quiet', '--recursive'], run);
    await must('submodules', [...sub, 'update', '--init', '--recursive', '--force', '--quiet'], run);
    await must('submodules', [...sub, 'foreach', '--quiet', '--recursive', 'git clean -ffdx --quiet'], run);
  });
}

async function timed<T>(step: GitStep, opts: FetchReleaseOptions, fn: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  const out = await fn();
  opts.onStep?.(step, Math.round(performance.now() - t0));
  return out;
}

/**
 * The whole seeding: fetchSource, resolveCommit, checkout. Afterwards repoDir holds
 * exactly COMMIT (default: the tip of SOURCE's default branch) and nothing else.
 * The caller must hold the root's lock (see lock.ts): stale git lock files are removed.
 */
export async function fetchRelease(
  repoDir: string,
  source: string,
  commitish?: string,
  opts: FetchReleaseOptions = {},
): Promise<Release> {
  await timed('fetch', opts, () => fetchSource(repoDir, source, opts));
  const release = await timed('resolve', opts, () => resolveCommit(repoDir, commitish, opts));
  await checkout(repoDir, release.commit, opts);
  return release;
}
