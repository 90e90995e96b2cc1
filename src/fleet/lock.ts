// One fleet operation at a time from this machine, on top of each server's own lock: a
// lock file per fleet file in $XDG_RUNTIME_DIR/bgproxy (else ~/.cache/bgproxy), holding
// the holder's pid like a root's lock, so a killed run never leaves it held.
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { acquireLockFile, type Lock } from '../deploy/lock.js';

export function fleetLockPath(fleetFile: string, env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_RUNTIME_DIR ? path.join(env.XDG_RUNTIME_DIR, 'bgproxy') : path.join(os.homedir(), '.cache', 'bgproxy');
  const id = createHash('sha256').update(path.resolve(fleetFile)).digest('hex').slice(0, 16);
  return path.join(base, `fleet-${id}.lock`);
}

/** Takes the fleet's lock for `action`, or throws BG_LOCKED naming the running one. */
export function acquireFleetLock(fleetFile: string, action: string): Promise<Lock> {
  const file = fleetLockPath(fleetFile);
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  return acquireLockFile(file, `fleet ${action}`);
}
