// The differential framing rig: a recording app under gunicorn (gevent workers: a parser
// other than llhttp that reads every request of a kept-alive connection), a raw tee that
// keeps the exact bytes a front forwarded, and the check that the two parsers agree with
// each other and with what the client got answers for. A naive forwarder is here too: the
// suite must flag it, which proves the suite can fail.
import { spawn } from 'node:child_process';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  acquireParser,
  kOnBody,
  kOnHeaders,
  kOnHeadersComplete,
  kOnMessageBegin,
  kOnMessageComplete,
  METHODS,
  REQUEST,
  RESPONSE,
  releaseParser,
} from '../../src/proxy/llhttp.js';
import { listen } from './raw.js';

type T = { teardown(fn: () => unknown): void };

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures');

/** One request as a parser saw it. */
export interface Seen {
  m: string;
  u: string;
  b: string;
}

export interface Rec extends Seen {
  n: number;
  xff: string | null;
  /** The request's headers as gunicorn's WSGI environ names them (HTTP_X_A, CONTENT_LENGTH). */
  h: Record<string, string>;
}

export interface Recorder {
  port: number;
  records(): Promise<Rec[]>;
}

/** GET on 127.0.0.1:port, straight to the app (no proxy): the body. */
function getDirect(port: number, p: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(`GET ${p} HTTP/1.1\r\nHost: recorder\r\nConnection: close\r\n\r\n`));
    let buf = '';
    const timer = setTimeout(() => s.destroy(new Error(`no answer from the recorder in ${timeoutMs} ms`)), timeoutMs);
    s.on('data', (d: Buffer) => (buf += d.toString('latin1')));
    s.on('error', reject);
    s.on('close', () => {
      clearTimeout(timer);
      const at = buf.indexOf('\r\n\r\n');
      if (!buf.startsWith('HTTP/1.1 200') || at < 0) reject(new Error(`bad answer from the recorder: ${buf.slice(0, 80)}`));
      else resolve(buf.slice(at + 4));
    });
  });
}

/**
 * gunicorn -k gevent running test/fixtures/recorder.py on a socket we bound on port 0 and
 * hand over as fd 3 (no port is guessed). Stopped at teardown (SIGTERM, then SIGKILL).
 */
export async function startRecorder(t: T): Promise<Recorder> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const fd = (server as unknown as { _handle: { fd: number } })._handle.fd;
  const child = spawn(
    '/usr/bin/gunicorn',
    ['-k', 'gevent', '-w', '1', '-b', 'fd://3', '--chdir', FIXTURES, '--log-level', 'critical', '--keep-alive', '30', 'recorder:app'],
    { stdio: ['ignore', 'ignore', 'pipe', fd], env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } },
  );
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  });
  // The child holds its own copy of the listening socket now; ours only kept the port.
  server.close();
  const records = async (): Promise<Rec[]> => JSON.parse(await getDirect(port, '/__records', 30_000)) as Rec[];
  try {
    await records();
  } catch (err) {
    throw new Error(`gunicorn did not start: ${(err as Error).message}; ${stderr.slice(-400)}`);
  }
  return { port, records };
}

export interface Tee {
  port: number;
  /** The bytes each connection carried towards the app, one buffer per connection. */
  streams(): Buffer[];
}

/** A TCP relay to `port` that keeps every byte sent towards it. */
export async function startTee(t: T, port: number): Promise<Tee> {
  const streams: Buffer[][] = [];
  const server = net.createServer((client) => {
    const mine: Buffer[] = [];
    streams.push(mine);
    const up = net.connect(port, '127.0.0.1');
    client.on('data', (d: Buffer) => mine.push(d));
    client.pipe(up);
    up.pipe(client);
    client.on('error', () => up.destroy());
    up.on('error', () => client.destroy());
    client.on('close', () => up.destroy());
    up.on('close', () => client.destroy());
  });
  return { port: await listen(t, server), streams: () => streams.map((s) => Buffer.concat(s)) };
}

/**
 * The naive forwarder the suite must flag: it replaces X-Forwarded-For in the first head
 * it sees and then pipes the rest of the connection raw, as many hand-written proxies do.
 */
export async function startNaiveForwarder(t: T, port: number): Promise<number> {
  const server = net.createServer((client) => {
    const up = net.connect(port, '127.0.0.1');
    let first = true;
    client.on('data', (d: Buffer) => {
      let s = d.toString('latin1');
      if (first) {
        first = false;
        s = s.replace(/\r\nX-Forwarded-For:[^\r\n]*/i, '').replace('\r\n', '\r\nX-Forwarded-For: 127.0.0.1\r\n');
      }
      up.write(Buffer.from(s, 'latin1'));
    });
    up.pipe(client);
    client.on('error', () => up.destroy());
    up.on('error', () => client.destroy());
    client.on('close', () => up.destroy());
    up.on('close', () => client.destroy());
  });
  return listen(t, server);
}

/** What llhttp (strict) makes of the bytes of one tee connection. */
export function parseRequests(bytes: Buffer): { reqs: Seen[]; error: string | null; afterUpgrade: number } {
  const p = acquireParser(REQUEST, 64 * 1024);
  const reqs: Seen[] = [];
  let headers: string[] = [];
  let url = '';
  let cur: Seen | null = null;
  let body: Buffer[] = [];
  p[kOnHeaders] = (h: string[], u: string) => {
    headers.push(...h);
    url += u;
  };
  p[kOnHeadersComplete] = (_maj: number, _min: number, _h: string[] | undefined, method: number, u: string | undefined): number => {
    cur = { m: METHODS[method] ?? '?', u: u || url, b: '' };
    url = '';
    headers = [];
    body = [];
    return 0;
  };
  p[kOnBody] = (c: Buffer) => {
    body.push(Buffer.from(c));
  };
  p[kOnMessageComplete] = () => {
    if (cur !== null) {
      cur.b = Buffer.concat(body).toString('latin1');
      reqs.push(cur);
    }
    cur = null;
  };
  const ret = p.execute(bytes);
  releaseParser(p, false);
  if (typeof ret !== 'number') return { reqs, error: ret.code, afterUpgrade: 0 };
  return { reqs, error: null, afterUpgrade: bytes.length - ret };
}

/** The statuses of the answers in a client's reply, as llhttp reads them. */
export function parseStatuses(reply: string): number[] {
  const p = acquireParser(RESPONSE, 64 * 1024);
  const statuses: number[] = [];
  p[kOnHeadersComplete] = (_maj: number, _min: number, _h: unknown, _m: number, _u: unknown, status: number): number => {
    statuses.push(status);
    return 0;
  };
  p.execute(Buffer.from(reply, 'latin1'));
  p.finish();
  releaseParser(p, false);
  return statuses;
}

/** Sends `bytes` on a new connection; resolves with all that came back once it closed (or at timeoutMs). */
export function exchangeRaw(port: number, bytes: Buffer, timeoutMs: number): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(bytes));
    const got: Buffer[] = [];
    const timer = setTimeout(() => s.destroy(), timeoutMs);
    s.on('data', (d: Buffer) => got.push(d));
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(got).toString('latin1'));
    });
  });
}

/** One request as the client wrote it: method, target, raw [name, value, …] headers. */
export interface Written {
  m: string;
  u: string;
  raw: string[];
}

/** The requests llhttp (strict, as bgproxy) reads in what a client wrote, up to an error or an upgrade. */
export function parseWritten(bytes: Buffer): Written[] {
  const p = acquireParser(REQUEST, 64 * 1024);
  const out: Written[] = [];
  let headers: string[] = [];
  let url = '';
  let inHead = true;
  p[kOnMessageBegin] = () => {
    headers = [];
    url = '';
    inHead = true;
  };
  p[kOnHeaders] = (h: string[], u: string) => {
    // Fields after the head are a chunked body's trailers: not part of the request's head.
    if (!inHead) return;
    headers.push(...h);
    url += u;
  };
  p[kOnHeadersComplete] = (_maj: number, _min: number, h: string[] | undefined, method: number, u: string | undefined): number => {
    inHead = false;
    out.push({ m: METHODS[method] ?? '?', u: u || url, raw: h ?? headers });
    return 0;
  };
  p.execute(bytes);
  releaseParser(p, false);
  return out;
}

/** Headers bgproxy writes by its own rules (framing, Host, forwarding, the request id): not compared with the client's. */
const REWRITTEN = /^(HTTP_HOST|CONTENT_LENGTH|HTTP_TRANSFER_ENCODING|HTTP_CONNECTION|HTTP_UPGRADE|HTTP_EXPECT|HTTP_X_FORWARDED_.*|HTTP_FORWARDED|HTTP_X_REAL_IP|HTTP_X_REQUEST_ID)$/;
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'trailers', 'transfer-encoding', 'upgrade']);
const envName = (lower: string): string =>
  lower === 'content-type' ? 'CONTENT_TYPE' : lower === 'content-length' ? 'CONTENT_LENGTH' : `HTTP_${lower.toUpperCase().replaceAll('-', '_')}`;
const ows = (v: string): string => v.replace(/^[ \t]+|[ \t]+$/g, '');

/**
 * The end-to-end headers the app must get for what the client wrote, by environ name: the
 * client's own bytes, less hop-by-hop ones and those its Connection lists (never framing or
 * forwarding ones), less underscore names; bgproxy's rewritten headers left out.
 */
export function expectedHeaders(w: Written): Record<string, string> {
  const listed = new Set<string>();
  for (let i = 0; i < w.raw.length; i += 2) {
    if (w.raw[i]!.toLowerCase() === 'connection') for (const x of w.raw[i + 1]!.split(',')) listed.add(x.trim().toLowerCase());
  }
  const out: Record<string, string> = {};
  for (let i = 0; i < w.raw.length; i += 2) {
    const lower = w.raw[i]!.toLowerCase();
    if (HOP_BY_HOP.has(lower) || lower.includes('_')) continue;
    const env = envName(lower);
    if (REWRITTEN.test(env) || listed.has(lower)) continue;
    const v = ows(w.raw[i + 1]!);
    out[env] = out[env] === undefined ? v : `${out[env]},${v}`;
  }
  return out;
}

/**
 * What is wrong in the headers the app got (`rec`) for the request the client wrote (`w`):
 * every end-to-end header as the client's bytes, nothing added; Host kept (the target's for
 * an absolute-form one); only bgproxy's X-Forwarded-Proto/Host (the client is not trusted),
 * no other X-Forwarded-*, Forwarded or X-Real-IP.
 */
export function headerViolations(w: Written, rec: Rec): string[] {
  const out: string[] = [];
  const want = expectedHeaders(w);
  const got: Record<string, string> = {};
  for (const [k, v] of Object.entries(rec.h)) if (!REWRITTEN.test(k)) got[k] = v;
  for (const k of new Set([...Object.keys(want), ...Object.keys(got)])) {
    if (want[k] !== got[k]) out.push(`${rec.m} ${rec.u}: ${k} reached the app as ${JSON.stringify(got[k] ?? null)}, the client wrote ${JSON.stringify(want[k] ?? null)}`);
  }
  let host: string | undefined;
  for (let i = 0; i < w.raw.length; i += 2) if (host === undefined && w.raw[i]!.toLowerCase() === 'host') host = ows(w.raw[i + 1]!);
  if (/^https?:\/\//i.test(w.u)) host = new URL(w.u).host;
  if (host !== undefined && rec.h.HTTP_HOST !== host) out.push(`${rec.m} ${rec.u}: Host ${JSON.stringify(rec.h.HTTP_HOST ?? null)}, the client's was ${JSON.stringify(host)}`);
  const fwd: Record<string, string> = {};
  for (const [k, v] of Object.entries(rec.h)) if (/^HTTP_(X_FORWARDED_.*|FORWARDED|X_REAL_IP)$/.test(k) && k !== 'HTTP_X_FORWARDED_FOR') fwd[k] = v;
  const fwdWant: Record<string, string> = { HTTP_X_FORWARDED_PROTO: 'http', ...(host !== undefined && host !== '' ? { HTTP_X_FORWARDED_HOST: host } : {}) };
  if (JSON.stringify(Object.entries(fwd).sort()) !== JSON.stringify(Object.entries(fwdWant).sort())) {
    out.push(`${rec.m} ${rec.u}: forwarding headers ${JSON.stringify(fwd)} reached the app, bgproxy sets ${JSON.stringify(fwdWant)}`);
  }
  return out;
}

export interface Payload {
  name: string;
  class: string;
  send: string;
  /** Statuses the client gets from bgproxy, in order (the sentinel's included). */
  expect: number[] | null;
  noSentinel?: boolean;
  minLlhttp?: string;
  settings?: string;
}

export interface Finding {
  name: string;
  id: string;
  statuses: number[];
  /** What the differential checks found wrong; empty when the payload passed. */
  violations: string[];
}

const idOf = (u: string): string | null => /\/(p\d{3})\//.exec(u)?.[1] ?? null;
const key = (s: Seen): string => `${s.m} ${s.u} ${JSON.stringify(s.b)}`;

/**
 * Sends every payload through the front at `port` (`concurrency` at a time), then checks:
 * the tee (llhttp) and the app (gunicorn) saw the same requests; every request the app saw
 * carries the X-Forwarded-For a proxy sets (`127.0.0.1`), so none passed unparsed, and a
 * target the client sent; each is a request the client wrote, with its headers as the client
 * wrote them (less the hop-by-hop ones and those bgproxy rewrites, see headerViolations);
 * and the client got an answer for each, in order.
 */
export async function runCorpus(port: number, tee: Tee, recorder: Recorder, payloads: ReadonlyArray<Payload & { id: string }>, concurrency = 8): Promise<Finding[]> {
  const before = tee.streams().length;
  const startRecords = (await recorder.records()).length;
  const replies = new Map<string, string>();
  const written = new Map<string, Written[]>();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < payloads.length) {
      const p = payloads[next++]!;
      let send = p.send.replaceAll('{id}', p.id);
      if (!p.noSentinel) send += `GET /${p.id}/end HTTP/1.1\r\nHost: live.test\r\nConnection: close\r\n\r\n`;
      written.set(p.id, parseWritten(Buffer.from(send, 'latin1')));
      replies.set(p.id, await exchangeRaw(port, Buffer.from(send, 'latin1'), 8000));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const records = (await recorder.records()).slice(startRecords);
  const byRecord = new Map(records.map((r) => [r.n, r]));
  const fromTee = new Map<string, Seen[]>();
  const teeTrouble = new Map<string, string[]>();
  for (const bytes of tee.streams().slice(before)) {
    const { reqs, error, afterUpgrade } = parseRequests(bytes);
    let last = 'unknown';
    for (const r of reqs) {
      last = idOf(r.u) ?? last;
      const list = fromTee.get(last) ?? [];
      list.push(r);
      fromTee.set(last, list);
    }
    const trouble = error !== null ? `forwarded bytes llhttp refuses (${error})` : afterUpgrade > 0 ? `${afterUpgrade} bytes forwarded after an upgrade the app never accepted` : null;
    if (trouble !== null) teeTrouble.set(last, [...(teeTrouble.get(last) ?? []), trouble]);
  }
  return payloads.map((p) => {
    const reply = replies.get(p.id) ?? '';
    const statuses = parseStatuses(reply);
    const app = records.filter((r) => idOf(r.u) === p.id);
    const seen = fromTee.get(p.id) ?? [];
    const violations = [...(teeTrouble.get(p.id) ?? [])];
    // Pipelined requests of one client may take different pooled sockets: compared as sets.
    if (seen.map(key).sort().join('\n') !== app.map(key).sort().join('\n')) {
      violations.push(`the app parsed ${JSON.stringify(app.map(key))}, llhttp parsed the forwarded bytes as ${JSON.stringify(seen.map(key))}`);
    }
    // A target the client never wrote (parts of two requests run together) means the front
    // carried state from one request into the next.
    const sent = p.send.replaceAll('{id}', p.id);
    for (const r of app) if (!sent.includes(r.u) && r.u !== `/${p.id}/end`) violations.push(`${r.m} ${r.u} reached the app, a target the client never sent`);
    for (const r of app) if (r.xff !== '127.0.0.1') violations.push(`${r.m} ${r.u} reached the app with X-Forwarded-For ${JSON.stringify(r.xff)} (not rewritten by the front)`);
    // Each request the app saw against the one the client wrote, header by header (taken in
    // order per target; an absolute-form target reaches the app as its path).
    const mine = [...(written.get(p.id) ?? [])];
    for (const r of app) {
      const at = mine.findIndex((w) => w.m === r.m && (w.u === r.u || (/^https?:\/\//i.test(w.u) && new URL(w.u).pathname === r.u)));
      if (at < 0) {
        violations.push(`${r.m} ${r.u} reached the app, not a request the client wrote`);
        continue;
      }
      violations.push(...headerViolations(mine[at]!, r));
      mine.splice(at, 1);
    }
    const echoed = [...reply.matchAll(/REC#(\d+)#/g)].map((m) => Number(m[1]));
    const answered = echoed.filter((n) => byRecord.has(n)).map((n) => byRecord.get(n)!.n);
    if (answered.join(',') !== app.map((r) => r.n).join(',')) {
      violations.push(`the app answered requests ${JSON.stringify(app.map((r) => `${r.m} ${r.u}`))}, the client got answers for ${JSON.stringify(answered.map((n) => `${byRecord.get(n)!.m} ${byRecord.get(n)!.u}`))}`);
    }
    return { name: p.name, id: p.id, statuses, violations };
  });
}
