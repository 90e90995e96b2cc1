// The reason phrase of every status line bgproxy writes itself (refusals, gate answers,
// 502/504): one table, so a 401 from an access gate or a 308 from the HTTPS redirect never
// goes out as "Unknown". Answers relayed from the app keep the app's own phrase, unless it
// has a control character (relayedPhrase).
import { STATUS_CODES } from 'node:http';

/** RFC 9110 phrases for the statuses bgproxy answers with (413 and 422 use the RFC's new names). */
const PHRASES: Readonly<Record<number, string>> = {
  200: 'OK',
  204: 'No Content',
  301: 'Moved Permanently',
  302: 'Found',
  304: 'Not Modified',
  307: 'Temporary Redirect',
  308: 'Permanent Redirect',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  413: 'Content Too Large',
  414: 'URI Too Long',
  417: 'Expectation Failed',
  421: 'Misdirected Request',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/** The standard reason phrase of `status` (Node's table for the rare ones; never empty). */
export function reasonPhrase(status: number): string {
  return PHRASES[status] ?? STATUS_CODES[status] ?? (status >= 500 ? 'Server Error' : status >= 400 ? 'Client Error' : 'Status');
}

/** "HTTP/1.1 <status> <phrase>\r\n". */
export function statusLine(status: number): string {
  return `HTTP/1.1 ${status} ${reasonPhrase(status)}\r\n`;
}

/**
 * The phrase to relay for an app's answer: its own, or the standard one when it has a
 * control character (below 0x20 but HTAB, or DEL), which llhttp accepts in a reason phrase
 * but RFC 9110 does not (a NUL or an escape sequence would reach the client's terminal or
 * logs, and Node's writeHead throws on one).
 */
export function relayedPhrase(status: number, message: string): string {
  for (let i = 0; i < message.length; i++) {
    const c = message.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) return reasonPhrase(status);
  }
  return message;
}
