// ROOT/run holds the control socket, the lock and serve's pid file. serve checks it before
// it binds anything: a file where the directory should be, a directory serve cannot write
// (made by another user, or by root for a serve that runs as a service user) or one that
// another user owns or may write (who could then replace the socket every command talks
// to) used to end in a stack trace from the socket's listen, or not at all. One line each.
import { constants, accessSync, lstatSync, type Stats } from 'node:fs';
import { userInfo } from 'node:os';
import path from 'node:path';
import { BgError } from '../errors.js';

function nameOf(uid: number): string {
  if (uid === process.getuid?.()) {
    try {
      return `uid ${uid} (${userInfo().username})`;
    } catch {}
  }
  return `uid ${uid}`;
}

/** Throws BG_LAYOUT, in one line, unless ROOT/run is a directory serve owns and alone may write. */
export function checkRunDir(root: string): void {
  const dir = path.join(root, 'run');
  let st: Stats;
  try {
    st = lstatSync(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new BgError('BG_LAYOUT', `${root} is not a bgproxy root (no run/ directory; run bgproxy init)`);
    if (code === 'EACCES') throw new BgError('BG_LAYOUT', `cannot reach ${dir}: permission denied for ${nameOf(process.getuid?.() ?? -1)} (run serve as the user that owns ${root})`);
    if (code === 'ENOTDIR') throw new BgError('BG_LAYOUT', `${root} is not a directory`);
    throw err;
  }
  if (!st.isDirectory()) {
    const what = st.isSymbolicLink() ? 'a symbolic link' : st.isFile() ? 'a file' : 'not a directory';
    throw new BgError('BG_LAYOUT', `${dir} is ${what}, not a directory: move it away and run bgproxy init (it makes run/ again)`);
  }
  const uid = process.getuid?.();
  if (uid === undefined) return; // not POSIX: no owners to compare
  if (st.uid !== uid) {
    throw new BgError(
      'BG_LAYOUT',
      `${dir} is owned by ${nameOf(st.uid)}, but serve runs as ${nameOf(uid)}: run serve as its owner, or chown -R ${uid} ${dir} (its owner could replace the control socket)`,
    );
  }
  if ((st.mode & 0o022) !== 0) {
    const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
    throw new BgError('BG_LAYOUT', `${dir} is writable by other users (mode ${mode}): chmod 700 ${dir} (they could replace the control socket)`);
  }
  try {
    accessSync(dir, constants.W_OK | constants.X_OK);
  } catch {
    const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
    throw new BgError('BG_LAYOUT', `${dir} is not writable by ${nameOf(uid)} (mode ${mode}): chmod 700 ${dir}`);
  }
}
