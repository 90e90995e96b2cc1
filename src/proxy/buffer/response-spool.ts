// A response absorbed from the app as fast as it writes while the client is fed at its own
// pace (nginx's proxy_buffering, without kamal-proxy's holding of the whole response: the
// first byte is never delayed). It exists only once the client has fallen behind: until
// then chunks go straight through. Memory first, then a temp file; at the disk bound the app
// is paused instead (back-pressure), so memory and disk stay bounded.
import { TempFile, type TempStore } from './temp-files.js';

// Bigger than a socket read: each piece costs an event-loop round trip through the thread
// pool, which a busy loop makes slow; this many bytes in memory per exchange is the price.
const READ_SIZE = 256 * 1024;
/** Bytes on their way to the disk before the other side is paused (the disk is slower than the network). */
const WRITE_BEHIND = 1024 * 1024;

/** The exchange a spool works for. */
export interface SpoolOwner {
  /** Writes to the client; false: wait for drained(). */
  deliver(chunk: Buffer): boolean;
  /** Everything held was delivered and the client keeps up again. */
  spoolEmpty(): void;
  /** Stop (true) or resume (false) reading the app: the bounds are reached, or no longer. */
  spoolPressure(on: boolean): void;
  spoolFailed(err: Error): void;
}

export class ResponseSpool {
  readonly #owner: SpoolOwner;
  readonly #store: TempStore;
  readonly #memMax: number;
  readonly #mem: Buffer[] = [];
  #memBytes = 0;
  #file: TempFile | null = null;
  #readAt = 0;
  #reading = false;
  /** Chunks that arrived past the disk bound, after the file's bytes. */
  readonly #tail: Buffer[] = [];
  #waitingDrain = false;
  #pressure = false;
  #closed = false;
  /** Holding bytes or waiting for the client: new chunks must queue behind. */
  active = false;

  constructor(owner: SpoolOwner, store: TempStore, memoryBytes: number) {
    this.#owner = owner;
    this.#store = store;
    this.#memMax = memoryBytes;
  }

  /** The client's socket is full: hold what comes until drained(). */
  waitDrain(): void {
    this.active = true;
    this.#waitingDrain = true;
  }

  /** Bytes held in memory (queued chunks and writes not yet on disk). */
  get memoryBytes(): number {
    let n = this.#memBytes + (this.#file?.pending ?? 0);
    for (const c of this.#tail) n += c.length;
    return n;
  }

  push(chunk: Buffer): void {
    if (this.#tail.length > 0) {
      this.#tail.push(chunk);
      return;
    }
    const file = this.#file;
    const fileEmpty = file === null || (this.#readAt === file.written && file.pending === 0);
    if (fileEmpty && this.#memBytes + chunk.length <= this.#memMax) {
      this.#mem.push(chunk);
      this.#memBytes += chunk.length;
      return;
    }
    const f = file ?? this.#openFile();
    if (!f.reserve(chunk.length)) {
      this.#tail.push(chunk);
      this.#setPressure(true);
      return;
    }
    f.append(chunk);
    if (f.pending > WRITE_BEHIND) this.#setPressure(true);
  }

  #openFile(): TempFile {
    const f = new TempFile(this.#store);
    f.onWritten = () => this.#written();
    f.onError = (err) => this.#fail(err);
    this.#file = f;
    return f;
  }

  #written(): void {
    if (this.#pressure && this.#tail.length === 0 && this.#file!.pending <= WRITE_BEHIND / 2) this.#setPressure(false);
    if (!this.#waitingDrain && !this.#reading) this.#pump();
  }

  /** The client's socket drained: feed it. */
  drained(): void {
    if (!this.#waitingDrain) return;
    this.#waitingDrain = false;
    if (!this.#reading) this.#pump();
  }

  #pump(): void {
    if (this.#closed) return;
    const owner = this.#owner;
    while (this.#mem.length > 0) {
      const c = this.#mem.shift()!;
      this.#memBytes -= c.length;
      if (!owner.deliver(c)) {
        this.#waitingDrain = true;
        return;
      }
    }
    const file = this.#file;
    if (file !== null) {
      if (this.#readAt < file.written) {
        this.#reading = true;
        file.read(this.#readAt, Math.min(READ_SIZE, file.written - this.#readAt), (err, chunk) => {
          this.#reading = false;
          if (this.#closed) return;
          if (chunk === null) return this.#fail(err ?? new Error('temp file closed'));
          this.#readAt += chunk.length;
          if (!owner.deliver(chunk)) this.#waitingDrain = true;
          else this.#pump();
        });
        return;
      }
      // Bytes still on their way to the disk: #written() pumps again.
      if (file.pending > 0) return;
      // All read: the file starts over and gives its budget back.
      file.reset();
      this.#readAt = 0;
    }
    while (this.#tail.length > 0) {
      if (!owner.deliver(this.#tail.shift()!)) {
        this.#waitingDrain = true;
        return;
      }
    }
    if (this.#pressure) this.#setPressure(false);
    this.active = false;
    owner.spoolEmpty();
  }

  #setPressure(on: boolean): void {
    if (this.#pressure === on) return;
    this.#pressure = on;
    this.#owner.spoolPressure(on);
  }

  #fail(err: Error): void {
    this.close();
    this.#owner.spoolFailed(err);
  }

  /** Drops what is held and the temp file (the client left, or the exchange failed). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.active = false;
    this.#mem.length = 0;
    this.#memBytes = 0;
    this.#tail.length = 0;
    this.#file?.close();
    this.#file = null;
  }
}
