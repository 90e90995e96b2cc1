// bgproxy's own version, from its package.json (dist/version.js and src/version.ts both sit
// one level below the package root).
import { readFileSync } from 'node:fs';

function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

export const VERSION = packageVersion();
