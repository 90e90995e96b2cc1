// The control socket speaks newline-delimited JSON: the client sends one request line,
// the server answers with zero or more event lines and one final line, then closes.
import path from 'node:path';
import type { BgErrorCode } from '../errors.js';

export const SOCKET_NAME = 'bgproxy.sock';
export const MAX_REQUEST_BYTES = 64 * 1024;

export interface ControlRequest {
  cmd: string;
  args?: Record<string, unknown>;
}

export type ControlLine =
  | { event: string; [k: string]: unknown }
  | { ok: true; result: unknown }
  | { ok: false; error: { code: BgErrorCode; message: string; detail?: string } };

export function socketPath(root: string): string {
  return path.join(root, 'run', SOCKET_NAME);
}
