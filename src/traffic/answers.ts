// The answers traffic controls give themselves, built once and reused per request.
import type { Answer } from '../proxy/gate.js';

export function answer(status: number, text: string, headers: ReadonlyArray<readonly [string, string]> = []): Answer {
  return Object.freeze({ kind: 'answer', status, headers: Object.freeze(headers), body: `${text}\n` }) as Answer;
}
