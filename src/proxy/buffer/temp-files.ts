// Where buffered request bodies and responses go once they outgrow memory: anonymous temp
// files in one 0700 directory under ROOT, each 0600 and unlinked as soon as it is open (so a
// crash leaves nothing behind but the rare file caught between open and unlink, which the
// next start removes), and one byte budget over all of them so slow clients cannot fill the
// disk (nginx's proxy_max_temp_file_size and client_body_temp_path, in one place).
import fs from 'node:fs';
import path from 'node:path';

/** Creates the temp directory (0700) and removes files a crash left in it (serve's start). */
export function cleanTempDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.chmodSync(dir, 0o700);
  for (const name of fs.readdirSync(dir)) {
    if (name.startsWith(PREFIX)) fs.rmSync(path.join(dir, name), { force: true });
  }
}

const PREFIX = 'bgproxy-';

export class TempStore {
  readonly dir: string;
  /** Most bytes all temp files together may hold; a reservation past it is refused. */
  maxBytes: number;
  #used = 0;
  #seq = 0;
  #ready = false;

  constructor(dir: string, maxBytes: number) {
    this.dir = dir;
    this.maxBytes = maxBytes;
  }

  /** Creates the directory (0700) if it is missing (the first temp file; serve's start cleans it). */
  prepare(): void {
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    this.#ready = true;
  }

  get used(): number {
    return this.#used;
  }

  /** Takes `n` bytes of the budget; false (nothing taken) when they do not fit. */
  reserve(n: number): boolean {
    if (this.#used + n > this.maxBytes) return false;
    this.#used += n;
    return true;
  }

  release(n: number): void {
    this.#used -= n;
  }

  /** Opens a new temp file read-write and unlinks it at once; `done` gets its fd or an error. */
  open(done: (err: Error | null, fd: number) => void): void {
    if (!this.#ready) {
      try {
        this.prepare();
      } catch (err) {
        done(err as Error, -1);
        return;
      }
    }
    const file = path.join(this.dir, `${PREFIX}${process.pid}-${++this.#seq}`);
    fs.open(file, 'wx+', 0o600, (err, fd) => {
      if (err) return done(err, -1);
      fs.unlink(file, () => done(null, fd));
    });
  }
}

/**
 * One exchange's temp file: appends in order (one write in flight at a time, queued chunks
 * written together), reads at any offset already written. Closed once nothing is in flight,
 * so an fd is never reused under a pending read or write.
 */
export class TempFile {
  readonly #store: TempStore;
  #fd = -1;
  #opening = false;
  #closed = false;
  #busy = 0;
  /** Bytes queued or being written, not yet on disk. */
  #queue: Buffer[] = [];
  #queued = 0;
  #writing = false;
  /** File offset where the next write goes, and how much of the file is written. */
  #writeAt = 0;
  written = 0;
  /** Bytes of the budget this file holds. */
  #reserved = 0;
  /** Told after each completed write (more is readable; the queue shrank). */
  onWritten: (() => void) | null = null;
  onError: ((err: Error) => void) | null = null;

  constructor(store: TempStore) {
    this.#store = store;
  }

  /** Bytes accepted but not yet on disk (what an exchange holds in memory for the file). */
  get pending(): number {
    return this.#queued;
  }

  /** Reserves `n` bytes of the budget for an append; false when the disk bound is reached. */
  reserve(n: number): boolean {
    if (!this.#store.reserve(n)) return false;
    this.#reserved += n;
    return true;
  }

  /** Appends a chunk whose bytes were reserved. */
  append(chunk: Buffer): void {
    this.#queue.push(chunk);
    this.#queued += chunk.length;
    this.#flush();
  }

  #flush(): void {
    if (this.#writing || this.#closed || this.#queue.length === 0) return;
    if (this.#fd < 0) {
      if (this.#opening) return;
      this.#opening = true;
      this.#busy++;
      this.#store.open((err, fd) => {
        this.#busy--;
        this.#opening = false;
        if (this.#closed) {
          if (!err) fs.close(fd, noop);
          return;
        }
        if (err) return this.#fail(err);
        this.#fd = fd;
        this.#flush();
      });
      return;
    }
    const bufs = this.#queue;
    this.#queue = [];
    let n = 0;
    for (const b of bufs) n += b.length;
    this.#writing = true;
    this.#busy++;
    fs.writev(this.#fd, bufs, this.#writeAt, (err, wrote) => {
      this.#busy--;
      this.#writing = false;
      if (this.#closed) return this.#closeIfIdle();
      if (err || wrote !== n) return this.#fail(err ?? new Error('short write to a temp file'));
      this.#writeAt += n;
      this.written += n;
      this.#queued -= n;
      this.#flush();
      this.onWritten?.();
    });
  }

  /** Reads up to `n` bytes at `offset` (already written); `done` gets them, or null once closed. */
  read(offset: number, n: number, done: (err: Error | null, chunk: Buffer | null) => void): void {
    if (this.#closed) return done(null, null);
    const buf = Buffer.allocUnsafe(n);
    this.#busy++;
    fs.read(this.#fd, buf, 0, n, offset, (err, got) => {
      this.#busy--;
      if (this.#closed) {
        this.#closeIfIdle();
        return done(null, null);
      }
      if (err || got === 0) return done(err ?? new Error('temp file ended early'), null);
      done(null, got === n ? buf : buf.subarray(0, got));
    });
  }

  /** Empties the file (everything in it was read) and gives its budget back. */
  reset(): void {
    if (this.#writing || this.#queued > 0) return;
    this.#store.release(this.#reserved);
    this.#reserved = 0;
    this.#writeAt = 0;
    this.written = 0;
    if (this.#fd >= 0) {
      this.#busy++;
      fs.ftruncate(this.#fd, 0, () => {
        this.#busy--;
        this.#closeIfIdle();
      });
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue = [];
    this.#queued = 0;
    this.#store.release(this.#reserved);
    this.#reserved = 0;
    this.onWritten = null;
    this.#closeIfIdle();
  }

  #closeIfIdle(): void {
    if (!this.#closed || this.#busy > 0 || this.#fd < 0) return;
    const fd = this.#fd;
    this.#fd = -1;
    fs.close(fd, noop);
  }

  #fail(err: Error): void {
    const onError = this.onError;
    this.close();
    onError?.(err);
  }
}

function noop(): void {}
