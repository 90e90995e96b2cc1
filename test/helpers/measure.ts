// Process-level gauges for leak tests: heap after a full GC, and open handles by kind.
import { readdirSync, readlinkSync } from 'node:fs';
import v8 from 'node:v8';
import vm from 'node:vm';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** Heap used after two full collections, in MB (one decimal). */
export function heapMb(): number {
  gc();
  gc();
  return Math.round(process.memoryUsage().heapUsed / 1e5) / 10;
}

/**
 * Memory still referenced after a full collection, in MB: the JS heap plus Buffer memory
 * (which lives outside the heap). Unlike RSS it does not count garbage not yet collected,
 * nor socket buffers, so it shows what code holds on to.
 */
export function retainedMb(): number {
  gc();
  const m = process.memoryUsage();
  return Math.round((m.heapUsed + m.arrayBuffers) / 1e5) / 10;
}

/**
 * Open sockets of this process (listeners, both ends of every connection, unref'd pooled
 * ones included), counted from /proc/self/fd; Node's handle lists skip unref'd sockets.
 */
export function openSockets(): number {
  let n = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`).startsWith('socket:')) n++;
    } catch {}
  }
  return n;
}

/** Resolves once `cond()` holds, polling every 20 ms; rejects after `timeoutMs`. */
export async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
