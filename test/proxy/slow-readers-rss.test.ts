// 100 slow readers of an 8 MB answer through a real `bgproxy serve` (the bin, in its own
// process, so its RSS is serve's alone): serve's memory stays within the per-exchange bounds
// of its buffering, not what the clients have yet to read (800 MB); the rest waits in temp
// files, all gone once the clients have finished or left; and the app is released as soon
// as it has written, long before the clients have read.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import t from 'tap';
import { startBackend } from '../helpers/backend.js';
import { serve } from '../helpers/cli.js';
import { until } from '../helpers/measure.js';
import { freePort } from '../helpers/ports.js';
import { makeRoot } from '../helpers/root.js';
import { tempBytes, tempFds } from '../helpers/temp-fds.js';

const KB = 1024;
const MB = 1024 * KB;
const CLIENTS = 100;
/**
 * The kernel's send buffer of each client socket (autotuned up to tcp_wmem's maximum, 4 MB
 * by default) takes that much of an answer a slow client has not read, outside serve's
 * memory; the answer is 4 MB more than that (8 MB, the size, by default), so the
 * rest has to wait in serve: in memory up to memoryBytes, then in a temp file.
 */
const WMEM_MAX = Number(readFileSync('/proc/sys/net/ipv4/tcp_wmem', 'utf8').trim().split(/\s+/)[2]);
const ANSWER = Math.max(8 * MB, Math.ceil(WMEM_MAX / MB) * MB + 4 * MB);
/** buffering.memoryBytes (its default). */
const MEMORY_BYTES = 64 * KB;
/** The slow clients' pace: the issue's phone connection. */
const RATE = 20_000;

/**
 * What one exchange may hold in memory besides its memoryBytes, from the spool's code
 * (src/proxy/buffer/response-spool.ts): up to WRITE_BEHIND (1 MB) on its way to the temp
 * file before the app is paused, plus the app's chunk that crossed it (one socket read,
 * 64 kB); one READ_SIZE piece (256 kB) read back from the file and waiting in the client's
 * socket.
 */
const IN_TRANSIT = MB + 64 * KB + 256 * KB;
/**
 * A fixed allowance for the whole process: V8 may keep up to 64 MB of dead Buffer memory
 * before its external-memory limit forces a collection, and that garbage counts in RSS;
 * 16 MB more for the heap of 100 connections and exchanges and the allocator's slack.
 */
const ALLOWANCE = 64 * MB + 16 * MB;
const BOUND = CLIENTS * (MEMORY_BYTES + IN_TRANSIT) + ALLOWANCE;

function statusKb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(m[1]) * KB;
}

/** A client that sent GET /big and reads it at RATE until told to finish or to leave. */
function slowReader(port: number) {
  const s = net.connect(port, '127.0.0.1');
  s.on('error', () => {});
  s.write('GET /big HTTP/1.1\r\nHost: live.test\r\n\r\n');
  const started = Date.now();
  let got = 0;
  let head = '';
  let total = Number.POSITIVE_INFINITY;
  let timer: NodeJS.Timeout | undefined;
  let fast = false;
  let settle: (whole: boolean) => void = () => {};
  const ended = new Promise<boolean>((resolve) => (settle = resolve));
  s.on('close', () => settle(got >= total));
  s.on('data', (d: Buffer) => {
    got += d.length;
    if (total === Number.POSITIVE_INFINITY) {
      head += d.toString('latin1', 0, Math.min(d.length, 4096));
      const end = head.indexOf('\r\n\r\n');
      if (end >= 0) total = end + 4 + ANSWER;
    }
    if (got >= total) settle(true);
    if (fast) return;
    const ahead = (got / RATE) * 1000 - (Date.now() - started);
    if (ahead > 0) {
      s.pause();
      timer = setTimeout(() => s.resume(), ahead);
    }
  });
  return {
    got: () => got,
    /** Resolves true once the head and all ANSWER bytes are in, false if the connection closed before. */
    ended,
    /** Reads the rest as fast as it comes. */
    finish(): void {
      fast = true;
      clearTimeout(timer);
      s.resume();
    },
    leave(): void {
      clearTimeout(timer);
      s.destroy();
    },
  };
}

t.test(`${CLIENTS} slow readers of a ${ANSWER / MB} MB answer: bounded RSS, temp files gone after, the app released`, async (t) => {
  const body = Buffer.alloc(ANSWER, 'b');
  // Like a gunicorn sync worker: a Content-Length answer, then the connection closes. The
  // app's socket closes only once bgproxy has read the answer to its end.
  const app = { open: 0, closed: 0 };
  const backend = await startBackend(t, (req, res) => {
    if (req.url !== '/big') return void res.end('ok\n');
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': ANSWER, connection: 'close' });
    res.end(body);
  });
  backend.server.on('connection', (sock: net.Socket) => {
    app.open++;
    sock.on('close', () => app.closed++);
  });
  const root = makeRoot(t, {
    hosts: { live: ['live.test'], next: ['next.live.test'] },
    colors: { blue: { port: backend.port }, green: { port: await freePort() } },
    holdMs: 0,
    buffering: { memoryBytes: MEMORY_BYTES },
  });
  // The bin as a user runs it (its shebang's Node flags), without tap's loaders.
  const p = await serve(t, root, [], { asInstalled: true });
  const pid = p.child.pid!;
  const tmpDir = path.join(root, 'run', 'tmp');

  // Warm up the paths the test takes (one fast download), then take the idle baseline.
  for (let i = 0; i < 3; i++) {
    const n = await new Promise<number>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port: p.port, path: '/big', headers: { host: 'live.test' }, agent: false }, (res) => {
          let len = 0;
          res.on('data', (d: Buffer) => (len += d.length));
          res.on('end', () => resolve(len));
        })
        .on('error', reject);
    });
    t.equal(n, ANSWER, 'a fast client gets the whole answer');
  }
  await new Promise((r) => setTimeout(r, 500));
  const baseline = statusKb(pid, 'VmRSS');
  const appOpenBefore = app.open;
  const appClosedBefore = app.closed;
  // The peak from here on (Linux resets VmHWM to the current RSS on "5" in clear_refs).
  // Where that is refused the peak includes the warm-up's, which only makes the bound harder.
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
  } catch {}

  const clients = Array.from({ length: CLIENTS }, () => slowReader(p.port));
  t.teardown(() => {
    for (const c of clients) c.leave();
  });
  let maxFds = 0;
  let maxBytes = 0;
  const sample = setInterval(() => {
    maxFds = Math.max(maxFds, tempFds(root, pid));
    maxBytes = Math.max(maxBytes, tempBytes(root, pid));
  }, 100);
  t.teardown(() => clearInterval(sample));

  await until(() => app.closed - appClosedBefore === CLIENTS, 45_000, `the app to have written all ${CLIENTS} answers`);
  const readByThen = clients.map((c) => c.got());
  const fdsByThen = tempFds(root, pid);
  t.equal(app.open - appOpenBefore, CLIENTS, 'one app connection per client');
  t.ok(
    readByThen.every((n) => n < ANSWER / 2),
    `every app socket closed while every client still had over half its answer to read (most read: ${Math.max(...readByThen)} bytes)`,
  );
  // What a client has not read is more than its socket's kernel buffer and memoryBytes hold.
  t.ok(fdsByThen >= CLIENTS / 2, `the unread rest waits in temp files (${fdsByThen} open for ${CLIENTS} exchanges)`);

  // Half finish at full speed, half leave mid-way.
  const finishers = clients.slice(0, CLIENTS / 2);
  const leavers = clients.slice(CLIENTS / 2);
  for (const c of leavers) c.leave();
  for (const c of finishers) c.finish();
  t.ok(
    leavers.every((c) => c.got() < ANSWER / 2),
    'the leavers left mid-way',
  );
  const whole = await Promise.all(finishers.map((c) => c.ended));
  t.ok(whole.every(Boolean), `all ${finishers.length} finishers got every byte`);
  await until(() => tempFds(root, pid) === 0, 30_000, 'every temp file to be closed');
  clearInterval(sample);
  t.equal(readdirSync(tmpDir).length, 0, 'nothing left in the temp dir');

  const peak = statusKb(pid, 'VmHWM');
  const growth = peak - baseline;
  t.comment(
    `baseline ${(baseline / MB).toFixed(1)} MB, peak ${(peak / MB).toFixed(1)} MB (+${(growth / MB).toFixed(1)} MB), bound +${(BOUND / MB).toFixed(1)} MB; ` +
      `temp files: at most ${maxFds} open, ${(maxBytes / MB).toFixed(0)} MB; ${(CLIENTS * ANSWER) / MB} MB answered`,
  );
  t.ok(growth <= BOUND, `peak RSS grew by ${(growth / MB).toFixed(1)} MB, within ${CLIENTS} x (memoryBytes + in transit) + allowance = ${(BOUND / MB).toFixed(1)} MB`);
  t.ok(BOUND < (CLIENTS * ANSWER) / 2, 'the bound is well below what holding the answers in memory would take');
});
