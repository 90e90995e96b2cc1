// Processes as the tests see them: alive or gone, and a group to kill when a test fails.
import { readFileSync } from 'node:fs';

/** True while pid is a live process (a zombie counts as gone). */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2)[0];
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** Kills the process group whose leader's pid is in `file`, if any (what a failed test or a SIGKILLed serve leaves). */
export function killGroupIn(file: string): void {
  try {
    process.kill(-Number(readFileSync(file, 'utf8').trim()), 'SIGKILL');
  } catch {}
}
