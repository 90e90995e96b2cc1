// Real git repositories for the deploy tests, made with the git CLI in a test's temp dir.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const ID = ['-c', 'user.name=x', '-c', 'user.email=x@y', '-c', 'commit.gpgsign=false', '-c', 'tag.gpgsign=false'];

function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('GIT_')) delete env[k];
  return { ...env, GIT_CEILING_DIRECTORIES: '/' };
}

/** Runs git in cwd and returns its trimmed stdout; throws on failure. */
export function gitIn(cwd: string, ...args: string[]): string {
  return execFileSync('git', [...ID, ...args], { cwd, env: cleanEnv(), encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

export class WorkRepo {
  constructor(readonly dir: string) {}

  static init(dir: string, branch = 'main'): WorkRepo {
    mkdirSync(dir, { recursive: true });
    gitIn(dir, 'init', '-q', '-b', branch);
    return new WorkRepo(dir);
  }

  git(...args: string[]): string {
    return gitIn(this.dir, ...args);
  }

  /** Writes the files (null deletes) and commits them all; returns the new sha. */
  commit(message: string, files: Record<string, string | null>): string {
    for (const [name, content] of Object.entries(files)) {
      const file = path.join(this.dir, name);
      if (content === null) {
        this.git('rm', '-q', '--', name);
      } else {
        mkdirSync(path.dirname(file), { recursive: true });
        writeFileSync(file, content);
        this.git('add', '--', name);
      }
    }
    this.git('commit', '-q', '-m', message);
    return this.git('rev-parse', 'HEAD');
  }
}

/** A bare repository, as `bgproxy init` creates ROOT/repo.git. */
export function initBare(dir: string): string {
  mkdirSync(dir, { recursive: true });
  gitIn(dir, 'init', '-q', '--bare');
  return dir;
}
