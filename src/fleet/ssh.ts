// The system ssh, as the user has it set up (config, agent, known_hosts), run without
// prompts (BatchMode) and with a connect timeout. One control master per server and per
// fleet run: a release opens each server once, not once per step. Remote commands carry
// only names, paths and commits in argv, never a secret.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FleetConfig, FleetServer } from './config.js';

/** Quotes one argument for the remote POSIX shell. */
export function shellQuote(arg: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** ssh exits 255 when it could not connect or authenticate (the remote command's own codes are below). */
export const SSH_FAILED = 255;

export class Ssh {
  readonly #fleet: Readonly<FleetConfig>;
  /** Short (unix socket paths are limited to ~104 bytes): /tmp/bgf-XXXXXX/%C. */
  readonly #controlDir: string;
  readonly #used = new Set<FleetServer>();

  constructor(fleet: Readonly<FleetConfig>) {
    this.#fleet = fleet;
    this.#controlDir = mkdtempSync(path.join(os.tmpdir().length < 40 ? os.tmpdir() : '/tmp', 'bgf-'));
  }

  /** ssh's options for `server`, destination excluded. */
  options(server: Readonly<FleetServer>): string[] {
    const args: string[] = [];
    if (this.#fleet.sshConfig) args.push('-F', this.#fleet.sshConfig);
    if (server.port !== null) args.push('-p', String(server.port));
    if (server.identityFile !== null) args.push('-i', server.identityFile);
    // ssh takes the first value it is given for an option: ours that must hold come
    // first (no prompt, our masters), then the server's own, then defaults it may override.
    args.push(
      '-o', 'BatchMode=yes',
      '-o', 'ControlMaster=auto',
      '-o', `ControlPath=${path.join(this.#controlDir, '%C')}`,
      // Outlives a step by a little; close() ends it, this bounds a run that was killed.
      '-o', 'ControlPersist=30',
      ...server.sshArgs,
      '-o', `ConnectTimeout=${this.#fleet.connectTimeoutS}`,
      '-o', 'ServerAliveInterval=5',
      '-o', 'ServerAliveCountMax=3',
    );
    return args;
  }

  /**
   * Runs `command` (a shell command line) on `server`. Its own process group: a Ctrl-C
   * meant for the fleet command does not kill the steps it decides to wait for.
   */
  spawn(server: Readonly<FleetServer>, command: string): ChildProcess {
    this.#used.add(server);
    return spawn('ssh', [...this.options(server), '--', server.ssh, command], {
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
    });
  }

  /** GIT_SSH_COMMAND for git over this server's ssh (the same options and master). */
  gitSshCommand(server: Readonly<FleetServer>): string {
    this.#used.add(server);
    return ['ssh', ...this.options(server)].map(shellQuote).join(' ');
  }

  /** Ends the control masters and removes their directory. */
  async close(): Promise<void> {
    await Promise.all(
      [...this.#used].map(
        (s) =>
          new Promise<void>((resolve) => {
            const p = spawn('ssh', [...this.options(s), '-O', 'exit', '--', s.ssh], { stdio: 'ignore' });
            const timer = setTimeout(() => p.kill('SIGKILL'), 5000);
            p.once('error', () => resolve());
            p.once('close', () => {
              clearTimeout(timer);
              resolve();
            });
          }),
      ),
    );
    rmSync(this.#controlDir, { recursive: true, force: true });
  }
}
