// Each color's two nginx files on disk: ROOT/COLOR/etc/nginx-upstream.conf, and the include,
// which is the real one (renderInclude) once the color holds a release and the placeholder while
// it holds none. nginx-config and init write what the site file needs and is missing; deploy and
// cutover rewrite a color's files, and can put back the bytes they replaced.
import { existsSync, readFileSync, unlinkSync } from 'node:fs';
import { COLORS, type Color, type Config } from '../config.js';
import { releasePath } from '../deploy/release.js';
import { includeFile, renderInclude, renderUpstream, upstreamFile, writeNginxFile } from './conf.js';
import { isPlaceholder, renderPlaceholder } from './placeholder.js';

/** A file as it was before a write: `previous` null when it did not exist. */
export interface FileSnapshot {
  file: string;
  previous: string | null;
}

function readOrNull(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/**
 * The include `color` should have now. Without a release, the placeholder only replaces nothing
 * or itself: a recipe's one-line include, or a real one whose release a failed redeploy cleared,
 * may be serving traffic, and stays real.
 */
export function includeFor(config: Config, color: Color): { text: string; placeholder: boolean } {
  if (!existsSync(releasePath(config.root, color))) {
    const current = readOrNull(includeFile(config.root, color));
    if (current === null || isPlaceholder(current)) return { text: renderPlaceholder(color), placeholder: true };
  }
  return { text: renderInclude(config, color), placeholder: false };
}

/**
 * Writes `color`'s upstream file and include (as includeFor says), each only when it changed.
 * Returns what the changed files held before: empty when nothing changed.
 */
export function writeColorFiles(config: Config, color: Color): FileSnapshot[] {
  const changed: FileSnapshot[] = [];
  const write = (file: string, text: string): void => {
    const r = writeNginxFile(config.root, file, text);
    if (r.changed) changed.push({ file, previous: r.previous });
  };
  write(upstreamFile(config.root, color), renderUpstream(config, color));
  write(includeFile(config.root, color), includeFor(config, color).text);
  return changed;
}

/** Puts the files back as they were, byte for byte (removing those that did not exist). */
export function restoreFiles(config: Config, snapshots: readonly FileSnapshot[]): void {
  for (const { file, previous } of snapshots) {
    if (previous !== null) writeNginxFile(config.root, file, previous);
    else if (existsSync(file)) unlinkSync(file);
  }
}

export interface SiteFile {
  file: string;
  color: Color;
  /** An include written as the placeholder: the color holds no release. */
  placeholder: boolean;
}

/**
 * What the site file of renderServerBlocks includes, so that nginx loads it before any deploy:
 * both colors' upstream files (rewritten when they differ), and each include that does not exist
 * yet (the placeholder, or the real one for a color that holds a release). Existing includes,
 * a recipe's among them, are left alone. Returns the files written.
 */
export function writeSiteFiles(config: Config): SiteFile[] {
  const written: SiteFile[] = [];
  for (const color of COLORS) {
    const upstream = upstreamFile(config.root, color);
    if (writeNginxFile(config.root, upstream, renderUpstream(config, color)).changed) written.push({ file: upstream, color, placeholder: false });
  }
  for (const color of COLORS) {
    const include = includeFile(config.root, color);
    if (existsSync(include)) continue;
    const { text, placeholder } = includeFor(config, color);
    writeNginxFile(config.root, include, text);
    written.push({ file: include, color, placeholder });
  }
  return written;
}

/** One line for people: the files written, and which colors answer 503 until their first deploy. */
export function formatSiteFiles(written: readonly SiteFile[], includedBy: string): string {
  const files = `wrote ${written.map((w) => w.file).join(', ')} (included by ${includedBy})`;
  const empty = written.filter((w) => w.placeholder).map((w) => w.color);
  if (empty.length === 0) return files;
  const [hold, their] = empty.length === 1 ? ['holds', 'its'] : ['hold', 'their'];
  return `${files}; ${empty.join(' and ')} ${hold} no release yet: nginx answers 503 there until ${their} first deploy`;
}
