// The include of a color that holds no release yet. The site file includes ROOT/live/... and
// ROOT/next/... from the start, and nginx refuses its whole configuration (every site on the
// box) over one include that does not exist (issue 15), so on a new root each color without a
// release gets this file: 503 with a short text, and the marker location, so a cutover can still
// be verified through nginx. The color's first deploy replaces it with the real include.
import type { Color } from '../config.js';
import { markerLocation } from './conf.js';

// How bgproxy tells its placeholder from any other include (a recipe's one-line file, a real
// include whose release was cleared by a failed redeploy): only the placeholder is kept as is.
const FIRST_LINE = '# written by bgproxy: placeholder';

/** What the placeholder answers on every path but the marker, with status 503. */
export function placeholderText(color: Color): string {
  return `No release is deployed in ${color} yet.\n`;
}

export function renderPlaceholder(color: Color): string {
  return `${FIRST_LINE} for ${color}, which holds no release yet.
# bgproxy replaces this file with the real include (proxy_pass to the ${color} app) at the
# color's first deploy; until then nginx itself answers 503. Edits here are lost.
default_type text/plain;
return 503 ${JSON.stringify(placeholderText(color))};

${markerLocation(color)}`;
}

export function isPlaceholder(text: string): boolean {
  return text.startsWith(FIRST_LINE);
}
