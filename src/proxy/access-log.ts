// The access log: one JSON line per forwarded request, in pino's format (the same fields a
// pino child logger with {component: 'access'} writes), written byte by byte into a block of
// about 64 kB, handed over once full (or after 200 ms) to the logger's destination, pino's
// asynchronous SonicBoom, so the kernel sees one write per block instead of one per request.
// Nothing is allocated per line, and blocks are reused once written: strings, ropes of
// strings, their re-encodings and then fresh blocks were most of what a line cost
// (docs/demo-and-bench.md, "Access log cost"). Flushed when serve stops
// and at process exit; what happens when stdout is slower than the traffic: see createLogger.
import { pino } from 'pino';
import { LogDestination, type Logger } from '../log.js';

/** createLogger's LogDestination takes the blocks as they are; any other gets each as a string. */
interface Destination {
  write(chunk: string): unknown;
  flushSync?(): void;
}

/** A block is handed over once it holds this much, or at the next flush tick. */
const BLOCK = 64 * 1024;
/** Room for the line that crosses BLOCK (a longer one gets a block of its own). */
const SLACK = 8 * 1024;
const FLUSH_MS = 200;
const HOSTS = 64;

const EMPTY = Buffer.alloc(0);
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

export class AccessLog {
  readonly #dest: Destination | null;
  /** pino's bindings as it writes them, `,"name":"bgproxy"` (and any child's), and ours. */
  readonly #prefix: string;
  #buf: Buffer = EMPTY;
  #off = 0;
  #timer: NodeJS.Timeout | null = null;
  // The line's runs of bytes that repeat from one request to the next, encoded when they change:
  // `{"level":30,"time":…,"name":"bgproxy","component":"access","method":"` (each millisecond),
  // `","host":"…","path":` (each host), `,"status":…,"color":"…","ms":` (each status and color).
  #time = -1;
  #stamp: Buffer = Buffer.alloc(0);
  #host: string | null = null;
  #hostRun: Buffer = Buffer.alloc(0);
  /** The host runs seen lately (a few hosts take turns); emptied past HOSTS entries. */
  readonly #hostRuns = new Map<string, Buffer>();
  #status = -1;
  #color = '';
  #tailRun: Buffer = Buffer.alloc(0);
  readonly #onExit = (): void => this.flush(true);

  constructor(logger: Logger) {
    const enabled = logger.isLevelEnabled('info');
    const dest = (logger as unknown as Record<symbol, Destination | undefined>)[pino.symbols.streamSym];
    this.#dest = enabled && dest !== undefined ? dest : null;
    const bindings = (logger as unknown as Record<symbol, string | undefined>)[pino.symbols.chindingsSym] ?? '';
    this.#prefix = `${bindings},"component":"access"`;
    if (this.#dest !== null) process.once('exit', this.#onExit);
  }

  get enabled(): boolean {
    return this.#dest !== null;
  }

  /** `host` and `path` are JSON-escaped here; method and color come from closed sets. */
  write(method: string, host: string, path: string, status: number, color: string, ms: number, upgrade = false): void {
    if (this.#dest === null) return;
    // The most this line can take: a string's UTF-16 unit is at most 6 bytes once escaped.
    const most = 256 + 3 * this.#prefix.length + 6 * (method.length + host.length + path.length + color.length);
    if (this.#off + most > this.#buf.length) this.#next(most);
    const now = Date.now();
    if (now !== this.#time) {
      this.#time = now;
      this.#stamp = Buffer.from(`{"level":30,"time":${now}${this.#prefix},"method":"`);
    }
    this.#copy(this.#stamp);
    this.#ascii(method);
    if (host !== this.#host) {
      this.#host = host;
      this.#hostRun = this.#hostRuns.get(host) ?? this.#newHostRun(host);
    }
    this.#copy(this.#hostRun);
    this.#string(path);
    if (upgrade) {
      this.#off += this.#buf.write(`,"status":${status},"color":"${color}","upgrade":true}\n`, this.#off, 'utf8');
    } else {
      if (status !== this.#status || color !== this.#color) {
        this.#status = status;
        this.#color = color;
        this.#tailRun = Buffer.from(`,"status":${status},"color":"${color}","ms":`);
      }
      this.#copy(this.#tailRun);
      this.#tenths(ms);
      this.#buf[this.#off++] = 0x7d; // }
      this.#buf[this.#off++] = 0x0a; // \n
    }
    if (this.#off >= BLOCK) this.#handOver();
    else if (this.#timer === null) {
      this.#timer = setTimeout(() => this.flush(), FLUSH_MS);
      this.#timer.unref();
    }
  }

  /** Hands what is gathered to the destination (and, with `sync`, has it written now). */
  flush(sync = false): void {
    const dest = this.#dest;
    if (dest === null) return;
    this.#handOver();
    if (sync) {
      try {
        dest.flushSync?.();
      } catch {
        // A destination that cannot write synchronously now: nothing more to do at exit.
      }
    }
  }

  close(): void {
    this.flush();
    process.off('exit', this.#onExit);
  }

  #handOver(): void {
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    const dest = this.#dest;
    if (this.#off === 0 || dest === null) return;
    if (dest instanceof LogDestination) {
      // The block is the destination's until written; the next line takes another.
      dest.writeBlock(this.#buf, this.#off);
      this.#buf = EMPTY;
    } else dest.write(this.#buf.toString('utf8', 0, this.#off));
    this.#off = 0;
  }

  #newHostRun(host: string): Buffer {
    if (this.#hostRuns.size >= HOSTS) this.#hostRuns.clear();
    const run = Buffer.from(`","host":${JSON.stringify(host)},"path":`);
    this.#hostRuns.set(host, run);
    return run;
  }

  /** A block with room for `most` bytes (what was gathered is handed over first). */
  #next(most: number): void {
    this.#handOver();
    const size = Math.max(BLOCK + SLACK, most);
    if (this.#buf.length >= size) return;
    // Blocks come back from createLogger's destination once written: a steady stream of
    // fresh 72 kB ArrayBuffers costs full GCs (V8 counts them as external memory).
    this.#buf = this.#dest instanceof LogDestination ? this.#dest.take(size) : Buffer.allocUnsafeSlow(size);
  }

  #copy(src: Buffer): void {
    this.#buf.set(src, this.#off);
    this.#off += src.length;
  }

  /** A string known to need no escaping (an HTTP method, a color). */
  #ascii(s: string): void {
    const buf = this.#buf;
    let o = this.#off;
    for (let i = 0; i < s.length; i++) buf[o++] = s.charCodeAt(i);
    this.#off = o;
  }

  /** `s` as a JSON string, as JSON.stringify writes it, UTF-8 encoded. */
  #string(s: string): void {
    const buf = this.#buf;
    const start = this.#off;
    let o = start;
    buf[o++] = QUOTE;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      // Printable ASCII but the quote and backslash is copied; anything else goes the slow way.
      if (c < 0x20 || c > 0x7e || c === QUOTE || c === BACKSLASH) {
        this.#off = start + buf.write(JSON.stringify(s), start, 'utf8');
        return;
      }
      buf[o++] = c;
    }
    buf[o++] = QUOTE;
    this.#off = o;
  }

  /** A non-negative integer below 2^31 (a status), else as String() writes it. */
  #int(n: number): void {
    if (!(n >= 0 && n < 0x80000000 && n === Math.floor(n))) return this.#ascii(String(n));
    const buf = this.#buf;
    let digits = 1;
    for (let x = n; x >= 10; x = Math.floor(x / 10)) digits++;
    let o = this.#off + digits;
    this.#off = o;
    do {
      const q = Math.floor(n / 10);
      buf[--o] = 0x30 + n - q * 10;
      n = q;
    } while (n > 0);
  }

  /** `ms` rounded to a tenth, as String(Math.round(ms * 10) / 10) writes it. */
  #tenths(ms: number): void {
    const t = Math.round(ms * 10);
    if (!(t >= 0 && t < 0x80000000)) return this.#ascii(String(t / 10));
    const whole = Math.floor(t / 10);
    this.#int(whole);
    const tenth = t - whole * 10;
    if (tenth !== 0) {
      this.#buf[this.#off++] = 0x2e; // .
      this.#buf[this.#off++] = 0x30 + tenth;
    }
  }
}
