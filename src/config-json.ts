// JSON.parse with an error a person can act on: the file, line and column, the line itself
// quoted, and the usual cause named (a trailing comma, a missing comma, an unquoted key).
// Node reports only "at position 309" before v22, and nothing at all for a cut-off file.
import { BgError } from './errors.js';

export interface JsonPosition {
  line: number;
  column: number;
  /** The text of that line (trimmed, shortened when long). */
  text: string;
}

/** Line and column (1-based) of a character offset. */
export function positionOf(text: string, offset: number): JsonPosition {
  const at = Math.max(0, Math.min(offset, text.length));
  const before = text.slice(0, at);
  const line = before.split('\n').length;
  const start = before.lastIndexOf('\n') + 1;
  const end = text.indexOf('\n', start);
  const whole = text.slice(start, end < 0 ? undefined : end).replace(/\r$/, '').trim();
  return { line, column: at - start + 1, text: whole.length > 60 ? `${whole.slice(0, 59)}…` : whole };
}

/** The offset JSON.parse complained about: from its message, or the end for a cut-off text. */
function errorOffset(text: string, message: string): number {
  const m = /at position (\d+)/.exec(message);
  if (m) return Number(m[1]);
  return text.replace(/\s+$/, '').length;
}

/** The likely cause, from the character before the error (what JSON parsers never say). */
function likelyCause(text: string, offset: number, message: string): string {
  const before = text.slice(0, offset).replace(/\s+$/, '');
  const prev = before.at(-1);
  const here = text.slice(offset).replace(/^\s+/, '')[0];
  if (offset >= text.replace(/\s+$/, '').length) return ' (the file ends early: a closing } or ] missing?)';
  if (prev === ',' && (here === '}' || here === ']')) return ' (a trailing comma before it?)';
  if (/property name/.test(message) && here !== undefined && /[A-Za-z_]/.test(here)) return ' (keys need double quotes)';
  if (/after property value|after array element/.test(message)) return ' (a comma missing at the end of the line before?)';
  if (here === "'") return ' (JSON strings need double quotes)';
  return '';
}

/**
 * Parses `text` read from `file`; a syntax error becomes BG_CONFIG:
 * `FILE is not valid JSON: line 4 column 1: Expected … (a trailing comma before it?): "}"`.
 */
export function parseJsonFile(text: string, file: string, prefix = 'config: ', hint = ''): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    const raw = (err as Error).message;
    const offset = errorOffset(text, raw);
    const pos = positionOf(text, offset);
    const problem = raw.replace(/\s*(in JSON )?at position \d+.*$/, '').replace(/ in JSON$/, '');
    const cause = likelyCause(text, offset, raw);
    // A trailing comma or a missing one is on the line before the one the parser stopped at.
    const quote = pos.text === '' || /^[}\]]/.test(pos.text) ? positionOf(text, text.slice(0, offset).replace(/\s+$/, '').length - 1) : pos;
    throw new BgError(
      'BG_CONFIG',
      `${prefix}${file} is not valid JSON${hint}: line ${pos.line} column ${pos.column}: ${problem}${cause}; line ${quote.line}: ${quote.text === '' ? '(empty)' : quote.text}`,
    );
  }
}
