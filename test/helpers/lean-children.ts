// Loaded into every test process by tap's node-arg (package.json), before the reaper.
//
// tap starts each test process with @tapjs/processinfo's loader, and processinfo puts that
// loader into NODE_OPTIONS of every process spawned from then on (even one spawned with
// NODE_OPTIONS: '', and again in each grandchild): every `node bin/bgproxy.js`, serve, app,
// watchdog and their own children load it and write a record at exit. That costs about
// 0.5 s of CPU per node process on this 2-core machine under load (`bgproxy --version`:
// 0.33 s without it, 0.85 s with it), and a suite spawns hundreds of them. Its records only
// feed coverage, which this suite turns off (disable-coverage in package.json); the test
// processes themselves keep the loader (tap puts it in their argv, not in NODE_OPTIONS).
//
// processinfo hooks spawning through process-on-spawn, whose listeners live in one global
// registry; a listener added after processinfo's sees the environment it built and takes
// the loader out again. Nothing else in NODE_OPTIONS is touched.

const REGISTRY = Symbol.for('process-on-spawn@*:singletonId');

interface SpawnOptions {
  env: Record<string, string | undefined>;
}

type Registry = { listeners: Array<(opts: SpawnOptions) => void> };

/** NODE_OPTIONS without processinfo's --import/--loader (quoted or not). */
export function withoutProcessinfo(nodeOptions: string): string {
  return nodeOptions
    .replace(/(^|\s)"?--(?:import|loader|require)[= ]"?[^"\s]*@tapjs\/processinfo[^"\s]*"?/g, '')
    .trim();
}

const registry = (globalThis as { [REGISTRY]?: Registry })[REGISTRY];
registry?.listeners.push((opts) => {
  const options = opts.env.NODE_OPTIONS;
  if (options?.includes('@tapjs/processinfo')) opts.env.NODE_OPTIONS = withoutProcessinfo(options);
});
