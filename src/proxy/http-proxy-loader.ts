// Loads http-proxy 1.18.1 without Node 22's DEP0060 warning. Its index.js and common.js take
// `require('util')._extend` when they load and call it on every request; since Node 22 that
// prints "The `util._extend` API is deprecated" at the first request (and the API may go).
// They get an equivalent, undeprecated copy instead; util._extend is put back at once.
import { createRequire } from 'node:module';
import type HttpProxy from 'http-proxy';

const require = createRequire(import.meta.url);
const util = require('node:util') as { _extend: unknown };

/** util._extend's semantics: copy the source's own enumerable keys onto the target. */
function extend(target: Record<string, unknown>, source: unknown): Record<string, unknown> {
  if (source === null || typeof source !== 'object') return target;
  for (const key of Object.keys(source)) target[key] = (source as Record<string, unknown>)[key];
  return target;
}

const original = Object.getOwnPropertyDescriptor(util, '_extend');
Object.defineProperty(util, '_extend', { value: extend, configurable: true, writable: true });
let loaded: typeof HttpProxy;
try {
  loaded = require('http-proxy') as typeof HttpProxy;
} finally {
  if (original) Object.defineProperty(util, '_extend', original);
}

export default loaded;
