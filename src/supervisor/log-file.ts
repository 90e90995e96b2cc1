// An app's stdout/stderr on disk, size-capped: ROOT/logs/COLOR.log never grows past
// maxBytes; when a write would pass it, the file becomes COLOR.log.1 (replacing the old
// one) and a fresh COLOR.log starts. So a chatty app uses at most 2 × maxBytes of disk.
import { closeSync, fstatSync, mkdirSync, openSync, renameSync, writeSync } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import path from 'node:path';

export class LogFile {
  #fd: number | null = null;
  #size = 0;

  /** Nothing is opened until the first write; the directory is created then. */
  constructor(
    readonly file: string,
    readonly maxBytes: number,
  ) {}

  /**
   * Appends synchronously. Writes are small (pipe chunks of at most 64 KiB) and go to the
   * page cache, so this costs microseconds and keeps rotation free of races.
   */
  write(data: Buffer | string): void {
    let buf = typeof data === 'string' ? Buffer.from(data) : data;
    if (buf.length === 0) return;
    // A single chunk larger than the cap keeps only its end: the latest output matters most.
    if (buf.length > this.maxBytes) buf = buf.subarray(buf.length - this.maxBytes);
    let fd = this.#open();
    if (this.#size > 0 && this.#size + buf.length > this.maxBytes) {
      this.#rotate();
      fd = this.#open();
    }
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    this.#size += buf.length;
  }

  /** A line from bgproxy itself (process started, exited…), marked so people can tell it apart. */
  note(line: string): void {
    this.write(`[bgproxy ${new Date().toISOString()}] ${line}\n`);
  }

  close(): void {
    if (this.#fd !== null) closeSync(this.#fd);
    this.#fd = null;
  }

  #open(): number {
    if (this.#fd === null) {
      mkdirSync(path.dirname(this.file), { recursive: true });
      this.#fd = openSync(this.file, 'a', 0o640);
      this.#size = fstatSync(this.#fd).size;
    }
    return this.#fd;
  }

  #rotate(): void {
    this.close();
    renameSync(this.file, `${this.file}.1`);
    this.#size = 0;
  }
}

/** The last n lines of a log, reading COLOR.log.1 too when COLOR.log holds fewer. */
export async function tailLog(file: string, n: number): Promise<string[]> {
  if (n <= 0) return [];
  const current = await tailLines(file, n);
  if (current.length >= n) return current;
  const older = await tailLines(`${file}.1`, n - current.length);
  return [...older, ...current];
}

async function tailLines(file: string, n: number): Promise<string[]> {
  let fh: Awaited<ReturnType<typeof open>>;
  try {
    fh = await open(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  try {
    // Read backwards in blocks until n line breaks (plus the one ending the last line) are in.
    const { size } = await fh.stat();
    const block = 64 * 1024;
    let pos = size;
    let chunks: Buffer[] = [];
    let newlines = 0;
    while (pos > 0 && newlines <= n) {
      const len = Math.min(block, pos);
      pos -= len;
      const buf = Buffer.alloc(len);
      await fh.read(buf, 0, len, pos);
      for (const b of buf) if (b === 0x0a) newlines++;
      chunks = [buf, ...chunks];
    }
    const lines = Buffer.concat(chunks).toString('utf8').split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    return lines.slice(-n);
  } finally {
    await fh.close();
  }
}

export interface FollowOptions {
  /** How often the file is checked; default 250 ms. */
  intervalMs?: number;
  /** Start at the current end of the file (default) or at its beginning. */
  from?: 'end' | 'start';
}

export interface Follower {
  /** Stops following; resolves once the last read is over. */
  close(): Promise<void>;
}

/**
 * Calls onData with text appended to `file` from now on (`tail -F`). Polls rather than
 * fs.watch, which misses renames on some filesystems. Survives rotation: the open
 * descriptor still reads the rest of the renamed file, then the new file is opened.
 * Waits for the file if it does not exist yet.
 */
export function followLog(file: string, onData: (text: string) => void, options: FollowOptions = {}): Follower {
  const intervalMs = options.intervalMs ?? 250;
  let fh: Awaited<ReturnType<typeof open>> | null = null;
  let ino = -1;
  let offset = 0;
  let closed = false;
  let first = true;
  let timer: NodeJS.Timeout | undefined;
  const decoder = new TextDecoder();

  const drain = async (): Promise<void> => {
    if (!fh) return;
    const buf = Buffer.alloc(64 * 1024);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, offset);
      if (bytesRead === 0) return;
      offset += bytesRead;
      const text = decoder.decode(buf.subarray(0, bytesRead), { stream: true });
      if (text) onData(text);
    }
  };

  const poll = async (): Promise<void> => {
    await drain();
    let st: Awaited<ReturnType<typeof stat>> | null = null;
    try {
      st = await stat(file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (!st) return;
    if (fh && st.ino === ino) {
      // Truncated in place (someone ran `: > COLOR.log`): start over at its beginning.
      if (st.size < offset) offset = 0;
      return;
    }
    // Rotated (or first open). Lines may have been appended to the old file between the
    // drain above and the rename: the open descriptor still reads them, so drain again.
    await drain();
    await fh?.close();
    fh = await open(file, 'r');
    const fresh = await fh.stat();
    ino = fresh.ino;
    offset = first && options.from !== 'start' ? fresh.size : 0;
    first = false;
    await drain();
  };

  let running: Promise<void> = Promise.resolve();
  const tick = (): void => {
    if (closed) return;
    running = poll()
      .catch(() => undefined)
      .finally(() => {
        if (!closed) timer = setTimeout(tick, intervalMs);
      });
  };
  // A file that does not exist yet is followed from its start once it appears.
  running = stat(file).then(
    () => undefined,
    () => {
      first = false;
    },
  );
  running.then(tick);

  return {
    async close() {
      closed = true;
      clearTimeout(timer);
      // A poll may have started while we waited for the previous one.
      for (let r = running; ; r = running) {
        await r;
        if (r === running) break;
      }
      await fh?.close();
      fh = null;
    },
  };
}
