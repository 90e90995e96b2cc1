// Crash-safe file writes: a temp file in the same directory, fsync, rename(2), fsync dir.
import { closeSync, fsyncSync, lstatSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';
import { BgError } from '../errors.js';

/** Throws if `file` exists and is a symlink: bgproxy never writes through a link it did not make. */
export function refuseSymlink(file: string): void {
  try {
    if (lstatSync(file).isSymbolicLink()) throw new BgError('BG_LAYOUT', `refusing to write ${file}: it is a symlink`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Some filesystems refuse fsync on a directory; the rename is still atomic.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

export function writeFileAtomic(file: string, data: string | Buffer, mode = 0o644): void {
  refuseSymlink(file);
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}-${Date.now()}`);
  const fd = openSync(tmp, 'wx', mode);
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    renameSync(tmp, file);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {}
    throw err;
  }
  fsyncDir(path.dirname(file));
}
