// Real OpenSSH servers for the fleet tests: one port-0 listener per server, owned by the
// test, handing each connection to its own `sshd -i` (inetd mode). Keys are made in a
// temp dir; a client config there trusts the host key for exactly these ports.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { tempDir } from './root.js';

type T = { teardown(fn: () => unknown): void };

export const SSHD = '/usr/sbin/sshd';

export interface SshKeys {
  dir: string;
  /** The client's private key (authorized on every test sshd). */
  identity: string;
  sshdConfig: string;
  hostPublicKey: string;
}

export function makeSshKeys(t: T): SshKeys {
  const dir = tempDir(t, 'bgssh-');
  const keygen = (file: string): void => {
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'bgproxy-test', '-f', file]);
  };
  keygen(path.join(dir, 'host_ed25519'));
  keygen(path.join(dir, 'id_ed25519'));
  writeFileSync(path.join(dir, 'authorized_keys'), readFileSync(path.join(dir, 'id_ed25519.pub')));
  const sshdConfig = path.join(dir, 'sshd_config');
  writeFileSync(
    sshdConfig,
    [
      `HostKey ${path.join(dir, 'host_ed25519')}`,
      `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
      // The temp dir is not root-owned 0755 all the way up, which StrictModes demands.
      'StrictModes no',
      'UsePAM no',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PermitRootLogin prohibit-password',
      'PidFile none',
      'LogLevel ERROR',
      // The session's shell must not source the login user's rc files: Debian's bash reads
      // ~/.bashrc for a command run over ssh when SHLVL < 2, and a developer's or CI image's
      // .bashrc (pyenv init, nvm, …) costs 0.5-2 s under load on every ssh command, git
      // push and Ansible task a fleet test runs. SHLVL=1 makes bash a nested shell (2).
      'SetEnv SHLVL=1',
      '',
    ].join('\n'),
  );
  // sshd, run as root, insists on its privilege separation directory (Debian's service
  // unit makes it at start; a container that never started the service lacks it).
  if (process.getuid?.() === 0 && !existsSync('/run/sshd')) mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  return { dir, identity: path.join(dir, 'id_ed25519'), sshdConfig, hostPublicKey: readFileSync(path.join(dir, 'host_ed25519.pub'), 'utf8').trim() };
}

export interface TestSshd {
  port: number;
  /** Connections are accepted and dropped at once, as by a dead sshd behind its port. */
  down(): void;
  up(): void;
  /** sshd's stderr, for failure messages. */
  log(): string;
}

export async function startSshd(t: T, keys: SshKeys): Promise<TestSshd> {
  const children = new Set<ChildProcess>();
  let refusing = false;
  let log = '';
  // pauseOnConnect: nothing is read here; the socket goes to sshd untouched.
  const server = net.createServer({ pauseOnConnect: true }, (socket) => {
    if (refusing) {
      socket.destroy();
      return;
    }
    const child = spawn(SSHD, ['-i', '-e', '-f', keys.sshdConfig], { stdio: [socket, socket, 'pipe'] });
    children.add(child);
    child.stderr?.on('data', (d: Buffer) => {
      log = (log + d.toString()).slice(-4000);
    });
    child.once('exit', () => children.delete(child));
    child.once('error', (err) => {
      log += `spawn failed: ${err.message}\n`;
    });
    // sshd holds its own copy of the descriptor.
    socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => resolve());
  });
  t.teardown(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await Promise.all(
      [...children].map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            c.once('exit', () => resolve());
            c.kill('SIGTERM');
            setTimeout(() => c.kill('SIGKILL'), 3000).unref();
          }),
      ),
    );
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    down: () => {
      refusing = true;
    },
    up: () => {
      refusing = false;
    },
    log: () => log,
  };
}
