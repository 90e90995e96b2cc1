// Process-level gauges for leak tests: heap after a full GC, and open handles by kind.
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

/** Open TCP sockets of this process (client and server side). */
export function openSockets(): number {
  const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
  return handles.filter((h) => h?.constructor?.name === 'Socket').length;
}

/** Resolves once `cond()` holds, polling every 20 ms; rejects after `timeoutMs`. */
export async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
