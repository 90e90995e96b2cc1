// A request body read whole before the app is contacted (nginx's proxy_request_buffering):
// in memory up to a small bound, the rest in a temp file, then sent to the app at full
// speed, as often as a retry needs it. A slow uploader so costs a socket and a file, never
// an app worker (gunicorn's sync workers handle one request at a time, start to end).
import { TempFile, type TempStore } from './temp-files.js';

/** What append() asks of the caller. */
export type Appended = 'ok' | 'pause' | 'full';

// Bigger than a socket read: each piece costs an event-loop round trip through the thread
// pool, which a busy loop makes slow; this many bytes in memory per exchange is the price.
const READ_SIZE = 256 * 1024;
/** Bytes on their way to the disk before the other side is paused (the disk is slower than the network). */
const WRITE_BEHIND = 1024 * 1024;

export interface BodyWriter {
  /** Writes to the app's socket; false: wait for resume(). */
  write(chunk: Buffer): boolean;
  /** All of the body is written. */
  done(): void;
  failed(err: Error): void;
}

export class RequestBody {
  readonly #store: TempStore;
  readonly #memMax: number;
  readonly #mem: Buffer[] = [];
  #memBytes = 0;
  #file: TempFile | null = null;
  /** Body bytes received so far. */
  length = 0;
  #ended = false;
  #paused = false;
  /** Told when the source may send again (a paused append's bytes reached the disk). */
  onWritable: (() => void) | null = null;
  /** Told once the body is whole and on disk (after end()). */
  onReady: (() => void) | null = null;
  onError: ((err: Error) => void) | null = null;
  // The send in progress: a new send() (a retry) starts over and orphans the old one.
  #gen = 0;
  #writer: BodyWriter | null = null;
  #memAt = 0;
  #fileAt = 0;
  #waiting = false;

  constructor(store: TempStore, memoryBytes: number) {
    this.#store = store;
    this.#memMax = memoryBytes;
  }

  /** Takes a piece of the body: 'pause' asks the source to stop until onWritable; 'full': the disk bound is reached. */
  append(chunk: Buffer): Appended {
    this.length += chunk.length;
    if (this.#file === null && this.#memBytes + chunk.length <= this.#memMax) {
      this.#mem.push(chunk);
      this.#memBytes += chunk.length;
      return 'ok';
    }
    let file = this.#file;
    if (file === null) {
      file = new TempFile(this.#store);
      file.onWritten = () => this.#written();
      file.onError = (err) => this.onError?.(err);
      this.#file = file;
    }
    if (!file.reserve(chunk.length)) return 'full';
    file.append(chunk);
    if (file.pending > WRITE_BEHIND) {
      this.#paused = true;
      return 'pause';
    }
    return 'ok';
  }

  end(): void {
    this.#ended = true;
    if (this.#file === null || this.#file.pending === 0) this.onReady?.();
  }

  #written(): void {
    const file = this.#file!;
    if (this.#paused && file.pending <= WRITE_BEHIND / 2) {
      this.#paused = false;
      this.onWritable?.();
    }
    if (this.#ended && file.pending === 0) this.onReady?.();
  }

  /** Sends the whole body through `w`, from its first byte. */
  send(w: BodyWriter): void {
    this.#gen++;
    this.#writer = w;
    this.#memAt = 0;
    this.#fileAt = 0;
    this.#waiting = false;
    this.#continue();
  }

  /** The app's socket drained: go on. */
  resume(): void {
    if (!this.#waiting) return;
    this.#waiting = false;
    this.#continue();
  }

  #continue(): void {
    const w = this.#writer;
    if (w === null) return;
    while (this.#memAt < this.#mem.length) {
      if (!w.write(this.#mem[this.#memAt++]!)) {
        this.#waiting = true;
        return;
      }
    }
    const file = this.#file;
    if (file === null || this.#fileAt >= file.written) {
      this.#writer = null;
      w.done();
      return;
    }
    const gen = this.#gen;
    file.read(this.#fileAt, Math.min(READ_SIZE, file.written - this.#fileAt), (err, chunk) => {
      if (gen !== this.#gen || this.#writer !== w) return;
      if (chunk === null) {
        this.#writer = null;
        w.failed(err ?? new Error('temp file closed'));
        return;
      }
      this.#fileAt += chunk.length;
      if (!w.write(chunk)) this.#waiting = true;
      else this.#continue();
    });
  }

  /** Stops any send and frees the memory and the temp file. */
  close(): void {
    this.#gen++;
    this.#writer = null;
    this.#mem.length = 0;
    this.#memBytes = 0;
    this.#file?.close();
    this.#file = null;
    this.onReady = null;
    this.onWritable = null;
  }
}
