// HTTP/2 on the TLS front door. A TLS connection that chose "h2" by ALPN becomes a
// node:http2 session on that socket (one listener, one certificate/SNI path for both
// protocols); each stream becomes an H2Request that takes the proxy's request path
// (checks, gates, exchange over the HTTP/1.1 upstream pool, access log) without being
// re-serialized and parsed again. This file owns the sessions: their limits, the budgets
// that end abusive ones, idle timeouts, and GOAWAY with a drain at stop.
import http2 from 'node:http2';
import type tls from 'node:tls';
import { checkIntervalMs, type RequestHead } from '../front.js';
import type { TimeoutsConfig } from '../../config.js';
import { H2Request, headOf } from './stream.js';

const { NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_FLAG_END_STREAM, NGHTTP2_NO_ERROR, NGHTTP2_PROTOCOL_ERROR } = http2.constants;

/** The head given to a stream refused before it reaches the proxy (it is answered 400). */
const REFUSED: RequestHead = { method: 'GET', url: '', versionMajor: 1, versionMinor: 1, raw: [], upgrade: false, keepAlive: true };

export interface H2Limits {
  /** SETTINGS_MAX_CONCURRENT_STREAMS advertised to and enforced on each client. */
  maxConcurrentStreams: number;
  /** SETTINGS_MAX_HEADER_LIST_SIZE: a bigger header block is refused. */
  maxHeaderListSize: number;
}

/** keepAliveMs: a session with no stream open and no frame received for this long gets GOAWAY; requestMs: a request body still arriving after this long gets 408. */
export type H2Timeouts = TimeoutsConfig;

/**
 * Rapid reset (CVE-2023-44487): each stream a client opens starts an upstream request, and
 * resetting it at once costs the client nothing. A session whose client cancels more than
 * this many streams it opened within RESET_WINDOW_MS is ended with GOAWAY ENHANCE_YOUR_CALM.
 * A browser cancels a page's streams when the user navigates away: far fewer than twice
 * its concurrency limit per window.
 */
export const RESET_WINDOW_MS = 10_000;
export function resetBudget(limits: H2Limits): number {
  return Math.max(100, 2 * limits.maxConcurrentStreams);
}

/** Per-session bookkeeping: open streams (for the idle timeout) and the reset budget. */
interface SessionState {
  open: number;
  resets: number;
  windowStart: number;
}

export class H2Front {
  readonly #sessions = new Map<http2.ServerHttp2Session, SessionState>();
  #limits: H2Limits;
  #timeouts: H2Timeouts;
  readonly #handle: (req: H2Request) => void;
  #closing = false;
  /** Streams in progress, for the coarse requestMs sweep (no timer per stream). */
  readonly #requests = new Set<H2Request>();
  #timer: NodeJS.Timeout | null = null;
  /** Sessions ended for abuse (rapid reset), for status and tests. */
  abusive = 0;

  /** `handle` takes each stream's request into the proxy (Handlers.stream). */
  constructor(handle: (req: H2Request) => void, limits: H2Limits, timeouts: H2Timeouts) {
    this.#handle = handle;
    this.#limits = limits;
    this.#timeouts = timeouts;
    this.#schedule();
  }

  /** New limits and timeouts (a config reload): limits apply to sessions opened from now on. */
  configure(limits: H2Limits, timeouts: H2Timeouts): void {
    this.#limits = limits;
    this.#timeouts = timeouts;
    this.#schedule();
  }

  #schedule(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = setInterval(() => this.sweep(), checkIntervalMs(this.#timeouts));
    this.#timer.unref();
  }

  /**
   * Times out requests whose body is still arriving after timeouts.requestMs, and cuts answers
   * the client has not taken for timeouts.sendMs (nginx's send_timeout); 0 turns either off.
   */
  sweep(): void {
    const { requestMs, sendMs } = this.#timeouts;
    const now = performance.now();
    for (const r of this.#requests) {
      if (sendMs > 0 && r.stalledSince >= 0 && now - r.stalledSince >= sendMs) r.abortStalled();
      else if (requestMs > 0 && r.receiving && now - r.started >= requestMs) r.timeout();
    }
  }

  get sessions(): number {
    return this.#sessions.size;
  }

  /** Serves a TLS socket whose ALPN protocol is h2. */
  serve(socket: tls.TLSSocket): void {
    if (this.#closing) {
      socket.destroy();
      return;
    }
    const limits = this.#limits;
    const session = http2.performServerHandshake(socket, {
      settings: {
        maxConcurrentStreams: limits.maxConcurrentStreams,
        maxHeaderListSize: limits.maxHeaderListSize,
        // Websockets stay on HTTP/1.1: no extended CONNECT (RFC 8441).
        enableConnectProtocol: false,
        enablePush: false,
      },
      // node:http2 ends a session that floods SETTINGS entries, PINGs or SETTINGS whose
      // acks it cannot send (nghttp2's outbound queue limit), streams over the concurrency
      // limit (maxSessionRejectedStreams), invalid frames, or CONTINUATION frames past the
      // header list size; its memory is capped per session (maxSessionMemory, MB).
      maxSessionMemory: 10,
    });
    const state: SessionState = { open: 0, resets: 0, windowStart: performance.now() };
    this.#sessions.set(session, state);
    // Floods and protocol errors end the session with an 'error': never the process.
    session.on('error', () => session.destroy());
    session.on('close', () => {
      this.#sessions.delete(session);
      // nghttp2 may end a session on its own (its limits): the connection goes with it.
      socket.destroy();
    });
    session.setTimeout(this.#timeouts.keepAliveMs, () => {
      if (state.open === 0) session.close();
    });
    session.on('stream', (stream: http2.ServerHttp2Stream, _h: unknown, flags: number, raw: string[]) => this.#stream(session, state, socket, stream, flags, raw));
  }

  #stream(session: http2.ServerHttp2Session, state: SessionState, socket: tls.TLSSocket, stream: http2.ServerHttp2Stream, flags: number, raw: string[]): void {
    state.open++;
    stream.on('error', () => stream.destroy());
    const head = headOf(raw, (flags & NGHTTP2_FLAG_END_STREAM) !== 0, this.#limits.maxHeaderListSize);
    const refused = 'status' in head;
    const req = new H2Request(stream, refused ? REFUSED : head, socket, flags);
    this.#requests.add(req);
    stream.on('close', () => {
      this.#requests.delete(req);
      state.open--;
      // A reset the client sent before its answer was complete: spent from the budget.
      if (stream.rstCode !== NGHTTP2_NO_ERROR && !req.resetHere && !req.complete && !session.destroyed) this.#reset(session, state);
    });
    if (refused && head.malformed === true) {
      // RFC 9113 8.1.1: a malformed request is a stream error of type PROTOCOL_ERROR.
      req.resetHere = true;
      stream.close(NGHTTP2_PROTOCOL_ERROR);
      return;
    }
    if (refused) {
      req.answer(head.status, [], `bgproxy: ${head.reason}\n`);
      return;
    }
    this.#handle(req);
  }

  #reset(session: http2.ServerHttp2Session, state: SessionState): void {
    const now = performance.now();
    if (now - state.windowStart > RESET_WINDOW_MS) {
      state.windowStart = now;
      state.resets = 0;
    }
    if (++state.resets <= resetBudget(this.#limits)) return;
    this.abusive++;
    session.goaway(NGHTTP2_ENHANCE_YOUR_CALM);
    session.destroy();
  }

  /**
   * Graceful stop: GOAWAY to every session (new streams refused, new sessions too), streams
   * in flight finish; resolves when all sessions are gone or at timeoutMs (then they are cut).
   */
  close(timeoutMs: number): Promise<void> {
    this.#closing = true;
    if (this.#timer) clearInterval(this.#timer);
    for (const s of this.#sessions.keys()) s.close();
    if (this.#sessions.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setInterval(() => {
        if (this.#sessions.size === 0) finish();
      }, 50);
      const deadline = setTimeout(() => {
        this.destroy();
        finish();
      }, timeoutMs);
      const finish = (): void => {
        clearInterval(timer);
        clearTimeout(deadline);
        resolve();
      };
    });
  }

  /** Cuts what is left. */
  destroy(): void {
    for (const s of this.#sessions.keys()) s.destroy();
  }
}
