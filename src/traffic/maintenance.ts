// Maintenance as a gate: while on, the live hosts answer 503 with Retry-After and the
// maintenance page (ROOT/maintenance.html, else a short built-in one), for HEAD and GET
// alike; the next hosts keep working so a fix can be tried there first.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Answer, Gate, RequestView, Verdict } from '../proxy/gate.js';

export const PAGE_FILE = 'maintenance.html';

const BUILT_IN = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Down for maintenance</title></head>
<body><h1>Down for maintenance</h1><p>We will be back shortly. Please try again in a few minutes.</p></body></html>
`;

/** The page to serve: ROOT/maintenance.html if it can be read, else the built-in one. */
export function maintenancePage(root: string): { body: Buffer; custom: boolean } {
  try {
    return { body: readFileSync(path.join(root, PAGE_FILE)), custom: true };
  } catch {
    return { body: Buffer.from(BUILT_IN), custom: false };
  }
}

export class MaintenanceGate implements Gate {
  /** The answer while on (built when turned on, so the page is read once), null while off. */
  #answer: Answer | null = null;
  /** The same answer closing the connection: a request with a body is not read further. */
  #answerClose: Answer | null = null;

  on(page: Buffer, retryAfterS: number): void {
    const headers = Object.freeze([
      ['retry-after', String(retryAfterS)],
      ['content-type', 'text/html; charset=utf-8'],
    ] as const);
    this.#answer = Object.freeze({ kind: 'answer', status: 503, headers, body: page });
    this.#answerClose = Object.freeze({ ...this.#answer, close: true });
  }

  off(): void {
    this.#answer = null;
    this.#answerClose = null;
  }

  get active(): boolean {
    return this.#answer !== null;
  }

  check(req: RequestView): Verdict | null {
    if (this.#answer === null || req.role !== 'live') return null;
    const length = req.header('content-length');
    return (length !== undefined && length !== '0') || req.header('transfer-encoding') !== undefined ? this.#answerClose : this.#answer;
  }
}
