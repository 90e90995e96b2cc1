// The buffering settings every exchange reads, made from the config once (and again on a
// reload, keeping the temp store and its byte count: files in use stay counted).
import type { BufferingConfig } from '../../config.js';
import type { BufferSettings } from '../exchange.js';
import { TempStore } from './temp-files.js';

/** Settings for `c`, reusing the store of `prev` (a reload); null when both directions stream. */
export function bufferSettings(c: BufferingConfig, prev: BufferSettings | null): BufferSettings | null {
  if (!c.requests && !c.responses) return null;
  let store = prev?.store;
  if (store === undefined || store.dir !== c.dir) store = new TempStore(c.dir, c.maxTempBytes);
  else store.maxBytes = c.maxTempBytes;
  return { requests: c.requests, responses: c.responses, memoryBytes: c.memoryBytes, store };
}
