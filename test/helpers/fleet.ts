// A three-server fleet on one machine: each server is its own sshd (test/helpers/sshd.ts)
// in front of its own root and its own `bgproxy serve --listen 127.0.0.1:0`. The app is
// a local git checkout of the fixture app that `fleet push` pushes from.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { initRoot } from '../../src/layout/init.js';
import { WorkRepo } from '../deploy/git-repos.js';
import { FIXTURE_APP } from './apps.js';
import { BIN, cli, type ServeProcess, serve } from './cli.js';
import { freePort } from './ports.js';
import { tempDir } from './root.js';
import { makeSshKeys, startSshd, type TestSshd } from './sshd.js';

type T = { teardown(fn: () => unknown): void };

export interface FleetServerSetup {
  name: string;
  root: string;
  sshd: TestSshd;
  serve: ServeProcess;
}

export interface FleetSetup {
  servers: FleetServerSetup[];
  fleetFile: string;
  repo: WorkRepo;
  /** Commits the app at `version` (extra files; null deletes); returns the sha. */
  commit(version: string, files?: Record<string, string | null>): string;
  /** `bgproxy fleet ARGS --fleet FILE`, run in the app's checkout. */
  fleet(args: string[]): Promise<{ code: number; stdout: string; stderr: string }>;
  /** The same as a child process, its output read as it comes. */
  spawnFleet(args: string[]): ResultPromise;
}

export async function startFleet(t: T, n = 3): Promise<FleetSetup> {
  const keys = makeSshKeys(t);
  const dir = tempDir(t, 'bgfleet-');
  const repo = WorkRepo.init(path.join(dir, 'app'));
  const source = readFileSync(FIXTURE_APP, 'utf8');
  const commit = (version: string, files: Record<string, string | null> = {}): string =>
    repo.commit(`Release ${version}`, { 'app.js': source, VERSION: `${version}\n`, ...files });

  const roots: { name: string; root: string }[] = [];
  for (let i = 1; i <= n; i++) {
    const name = `web${i}`;
    const root = path.join(dir, name);
    initRoot({
      root,
      settings: {
        listen: '127.0.0.1:0',
        hosts: { live: ['shop.test'], next: ['next.shop.test'] },
        colors: { blue: { port: await freePort() }, green: { port: await freePort() } },
        holdMs: 8000,
        drainTimeoutMs: 5000,
        app: {
          // A release that lists this root in `fail-on` fails its install here only; one
          // with `slow-install` takes a second longer to install.
          install: ['test -f VERSION', '! grep -qxF "$BG_ROOT" fail-on 2>/dev/null', 'if [ -f slow-install ]; then sleep 1; fi'],
          // tap's loaders in NODE_OPTIONS would slow every app start.
          env: { NODE_OPTIONS: '' },
          start: 'APP_VERSION=$(cat VERSION) exec node app.js',
          // An operator's veto: a cutover on a server whose root holds `hold-cutover` fails
          // its beforeCutover hook, before that server is ready to switch; one whose root
          // holds `slow-cutover` is not ready until that file is gone (30 s at most).
          hooks: {
            beforeCutover: ['test ! -f "$BG_ROOT/hold-cutover"', 'i=0; while [ -f "$BG_ROOT/slow-cutover" ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done'],
          },
          health: { path: '/health', intervalMs: 200, timeoutMs: 1000 },
          startTimeoutMs: 8000,
          stopTimeoutMs: 3000,
        },
      },
    });
    roots.push({ name, root });
  }
  // Each server's sshd and serve start at once: one after the other cost seconds per file.
  const servers: FleetServerSetup[] = await Promise.all(
    roots.map(async ({ name, root }) => {
      const [sshd, served] = await Promise.all([startSshd(t, keys), serve(t, root)]);
      return { name, root, sshd, serve: served };
    }),
  );

  const ops = path.join(dir, 'ops');
  mkdirSync(ops);
  const knownHosts = path.join(ops, 'known_hosts');
  writeFileSync(knownHosts, servers.map((s) => `[127.0.0.1]:${s.sshd.port} ${keys.hostPublicKey}\n`).join(''));
  const last = servers[n - 1]!;
  // The last server is reached through a Host alias of the ssh config, the others by
  // destination, port and identity in fleet.json: both ways a user may write it.
  writeFileSync(
    path.join(ops, 'ssh_config'),
    [
      `Host ${last.name}`,
      '  HostName 127.0.0.1',
      `  Port ${last.sshd.port}`,
      `  IdentityFile ${keys.identity}`,
      'Host *',
      '  User root',
      `  UserKnownHostsFile ${knownHosts}`,
      '  StrictHostKeyChecking yes',
      '  IdentitiesOnly yes',
      '  LogLevel ERROR',
      '',
    ].join('\n'),
  );
  const fleetFile = path.join(ops, 'fleet.json');
  const bgproxy = `node ${BIN}`;
  writeFileSync(
    fleetFile,
    JSON.stringify(
      {
        sshConfig: 'ssh_config',
        parallel: n,
        servers: servers.map((s) =>
          s === last
            ? { name: s.name, ssh: s.name, root: s.root, bgproxy }
            : { name: s.name, ssh: 'root@127.0.0.1', port: s.sshd.port, identityFile: keys.identity, root: s.root, bgproxy },
        ),
      },
      null,
      2,
    ),
  );
  const env = { XDG_RUNTIME_DIR: dir, NODE_OPTIONS: '' };
  const fleet = (args: string[]) => cli(['fleet', ...args, '--fleet', fleetFile], { cwd: repo.dir, env });
  const spawnFleet = (args: string[]): ResultPromise =>
    execa('node', [BIN, 'fleet', ...args, '--fleet', fleetFile], { cwd: repo.dir, env, reject: false, timeout: 120_000 });
  return { servers, fleetFile, repo, commit, fleet, spawnFleet };
}
