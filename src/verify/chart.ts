// A self-contained SVG timeline of a verify run: requests per bucket stacked by
// the release that answered, failures in red on top, the p99 latency per bucket
// on a second axis, and a dashed line at each mark (cutover, rollback…). Written
// by hand so verify has no chart dependency; the output opens in any browser.
import type { LoadResult } from './load.js';
import { percentileOfSorted } from './stats.js';

export interface ChartOptions {
  /** Default 100. Samples go in the bucket of their start time. */
  bucketMs?: number;
  width?: number;
  height?: number;
  title?: string;
}

const FONT = "system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif";
const FAIL = '#d62728';
const LINE = '#222';
const BLUES = ['#3b7dd8', '#89b4ef', '#1d4f91', '#b9d3f5'];
const GREENS = ['#2f9e44', '#8ce99a', '#1b6e2e', '#b2f2bb'];
const OTHERS = ['#f08c00', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

interface Bucket {
  byLabel: Map<string, number>;
  failed: number;
  latencies: number[];
}

export function renderSvg(result: LoadResult, opts: ChartOptions = {}): string {
  const bucketMs = opts.bucketMs ?? 100;
  const width = opts.width ?? 960;
  const height = opts.height ?? 440;
  const m = { top: 64, right: 70, bottom: 96, left: 64 };
  const pw = width - m.left - m.right;
  const ph = height - m.top - m.bottom;

  // Span the time requests were issued, so the last bucket isn't a misleading
  // sliver; a request issued a hair late goes in the last bucket.
  const n = Math.max(1, Math.ceil(result.loadMs / bucketMs - 1e-6));
  const buckets: Bucket[] = Array.from({ length: n }, () => ({ byLabel: new Map(), failed: 0, latencies: [] }));
  const labels: string[] = [];
  let failed = 0;
  for (const s of result.samples) {
    const b = buckets[Math.min(n - 1, Math.max(0, Math.floor(s.t / bucketMs)))]!;
    if (s.status !== null) b.latencies.push(s.ms);
    if (s.error !== null) {
      b.failed++;
      failed++;
    } else if (s.label !== null) {
      if (!labels.includes(s.label)) labels.push(s.label);
      b.byLabel.set(s.label, (b.byLabel.get(s.label) ?? 0) + 1);
    }
  }
  const colors = assignColors(labels);
  const perLabel = new Map(labels.map((l) => [l, sum(buckets.map((b) => b.byLabel.get(l) ?? 0))]));
  const p99s = buckets.map((b) =>
    b.latencies.length === 0 ? null : percentileOfSorted(b.latencies.sort((x, y) => x - y), 99),
  );

  const maxCount = Math.max(1, ...buckets.map((b) => b.failed + sum(b.byLabel.values())));
  const yStep = niceStep(maxCount / 5);
  const yMax = Math.ceil(maxCount / yStep) * yStep;
  const maxLat = Math.max(1, ...p99s.map((v) => v ?? 0));
  const lStep = niceStep(maxLat / 5);
  const lMax = Math.ceil(maxLat / lStep) * lStep;
  const spanS = (n * bucketMs) / 1000;
  const xStep = niceStep(spanS / 10);

  const x = (ms: number): number => m.left + (ms / (n * bucketMs)) * pw;
  const y = (count: number): number => m.top + ph - (count / yMax) * ph;
  const yl = (ms: number): number => m.top + ph - (ms / lMax) * ph;
  const bw = pw / n;
  const gap = bw > 4 ? Math.min(2, bw * 0.15) : 0;

  const out: string[] = [];
  const title = opts.title ?? 'bgproxy verify';
  const totals = `${result.samples.length} requests, ${failed} failed, ${(result.durationMs / 1000).toFixed(1)} s, ${bucketMs} ms buckets`;
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${FONT}" font-size="12">`,
    `<title>${esc(title)}</title>`,
    `<rect class="bg" x="0" y="0" width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="${m.left}" y="26" font-size="17" font-weight="600" fill="#111">${esc(title)}</text>`,
    `<text x="${m.left}" y="46" fill="#555">${esc(totals)}</text>`,
  );

  // Grid and left axis (requests per bucket).
  for (let v = 0; v <= yMax + 1e-9; v += yStep) {
    const yy = r(y(v));
    out.push(`<line x1="${m.left}" x2="${m.left + pw}" y1="${yy}" y2="${yy}" stroke="#e6e6e6"/>`);
    out.push(`<text x="${m.left - 8}" y="${yy + 4}" text-anchor="end" fill="#444">${fmt(v)}</text>`);
  }
  // Right axis (p99 latency).
  for (let v = 0; v <= lMax + 1e-9; v += lStep) {
    const yy = r(yl(v));
    out.push(`<line x1="${m.left + pw}" x2="${m.left + pw + 5}" y1="${yy}" y2="${yy}" stroke="#444"/>`);
    out.push(`<text x="${m.left + pw + 8}" y="${yy + 4}" fill="#444">${fmt(v)}</text>`);
  }
  // Time axis.
  for (let s = 0; s <= spanS + 1e-9; s += xStep) {
    const xx = r(x(s * 1000));
    out.push(`<line x1="${xx}" x2="${xx}" y1="${m.top + ph}" y2="${m.top + ph + 5}" stroke="#444"/>`);
    out.push(`<text x="${xx}" y="${m.top + ph + 19}" text-anchor="middle" fill="#444">${fmt(s)}s</text>`);
  }
  const midY = m.top + ph / 2;
  out.push(
    `<text transform="translate(18 ${r(midY)}) rotate(-90)" text-anchor="middle" fill="#333">requests / ${bucketMs} ms</text>`,
    `<text transform="translate(${width - 16} ${r(midY)}) rotate(90)" text-anchor="middle" fill="#333">p99 latency (ms)</text>`,
    `<text x="${r(m.left + pw / 2)}" y="${m.top + ph + 38}" text-anchor="middle" fill="#333">time since start</text>`,
  );

  // Bars: one rect per (bucket, label) with answers, then failures on top.
  buckets.forEach((b, i) => {
    let stacked = 0;
    const bx = r(m.left + i * bw + gap / 2);
    const w = r(Math.max(0.5, bw - gap));
    const stack = (count: number, attrs: string): void => {
      const top = y(stacked + count);
      out.push(`<rect ${attrs} x="${bx}" y="${r(top)}" width="${w}" height="${r(y(stacked) - top)}"/>`);
      stacked += count;
    };
    for (const label of labels) {
      const c = b.byLabel.get(label);
      if (c === undefined) continue;
      stack(c, `class="bar" data-label="${esc(label)}" data-bucket="${i}" fill="${colors.get(label)}"`);
    }
    if (b.failed > 0) stack(b.failed, `class="fail" data-bucket="${i}" fill="${FAIL}"`);
  });
  out.push(`<line x1="${m.left}" x2="${m.left + pw}" y1="${m.top + ph}" y2="${m.top + ph}" stroke="#444"/>`);
  out.push(`<line x1="${m.left}" x2="${m.left}" y1="${m.top}" y2="${m.top + ph}" stroke="#444"/>`);
  out.push(`<line x1="${m.left + pw}" x2="${m.left + pw}" y1="${m.top}" y2="${m.top + ph}" stroke="#444"/>`);

  // p99 line, broken where a bucket had no response; a white halo keeps it
  // readable over the bars.
  for (const run of runs(p99s)) {
    const pts = run.map(([i, v]) => `${r(m.left + (i + 0.5) * bw)},${r(yl(v))}`).join(' ');
    out.push(`<polyline class="p99" points="${pts}" fill="none" stroke="#fff" stroke-width="4" stroke-linejoin="round" opacity="0.8"/>`);
    out.push(`<polyline class="p99" points="${pts}" fill="none" stroke="${LINE}" stroke-width="1.6" stroke-linejoin="round"/>`);
  }

  // Marks.
  result.marks.forEach((mk, i) => {
    const xx = r(x(Math.min(mk.t, n * bucketMs)));
    const ty = m.top + 14 + (i % 3) * 15;
    // Near the right edge the text goes left of the line, inside the plot.
    const right = xx > m.left + pw - 140;
    const tx = right ? xx - 5 : xx + 5;
    out.push(
      `<g class="mark"><line x1="${xx}" x2="${xx}" y1="${m.top}" y2="${m.top + ph}" stroke="#333" stroke-width="1.4" stroke-dasharray="5 4"/>` +
        `<text x="${tx}" y="${ty}"${right ? ' text-anchor="end"' : ''} fill="#111" font-weight="600" stroke="#fff" stroke-width="3" paint-order="stroke">${esc(mk.label)} ${fmt(mk.t / 1000)}s</text></g>`,
    );
  });

  // Legend, under the time axis.
  const items: { text: string; draw: (lx: number, ly: number) => string }[] = [
    ...labels.map((l) => ({
      text: `${l} (${perLabel.get(l)})`,
      draw: (lx: number, ly: number) =>
        `<rect class="swatch" x="${lx}" y="${ly - 10}" width="14" height="12" fill="${colors.get(l)}"/>`,
    })),
    {
      text: `failed (${failed})`,
      draw: (lx: number, ly: number) => `<rect class="swatch" x="${lx}" y="${ly - 10}" width="14" height="12" fill="${FAIL}"/>`,
    },
    {
      text: 'p99 latency',
      draw: (lx: number, ly: number) =>
        `<line x1="${lx}" x2="${lx + 14}" y1="${ly - 4}" y2="${ly - 4}" stroke="${LINE}" stroke-width="1.6"/>`,
    },
  ];
  if (result.marks.length > 0) {
    items.push({
      text: 'mark',
      draw: (lx, ly) =>
        `<line x1="${lx + 7}" x2="${lx + 7}" y1="${ly - 11}" y2="${ly + 2}" stroke="#333" stroke-width="1.4" stroke-dasharray="3 2"/>`,
    });
  }
  let lx = m.left;
  let ly = height - 22;
  for (const it of items) {
    const w = 22 + it.text.length * 7 + 18;
    if (lx + w > width - m.right && lx > m.left) {
      lx = m.left;
      ly += 18;
    }
    out.push(`<g class="legend">${it.draw(lx, ly)}<text x="${lx + 20}" y="${ly}" fill="#333">${esc(it.text)}</text></g>`);
    lx += w;
  }
  out.push('</svg>');
  return out.join('\n') + '\n';
}

/** Blue-ish shades for labels starting "blue", green-ish for "green", a palette otherwise. */
export function assignColors(labels: readonly string[]): Map<string, string> {
  const used = { blue: 0, green: 0, other: 0 };
  const map = new Map<string, string>();
  for (const l of labels) {
    const low = l.toLowerCase();
    const family = low.startsWith('blue') ? 'blue' : low.startsWith('green') ? 'green' : 'other';
    const palette = family === 'blue' ? BLUES : family === 'green' ? GREENS : OTHERS;
    map.set(l, palette[used[family]++ % palette.length]!);
  }
  return map;
}

/** Consecutive non-null values as [index, value] runs. */
function runs(values: readonly (number | null)[]): [number, number][][] {
  const out: [number, number][][] = [];
  let cur: [number, number][] = [];
  values.forEach((v, i) => {
    if (v === null) {
      if (cur.length > 0) out.push(cur);
      cur = [];
    } else cur.push([i, v]);
  });
  if (cur.length > 0) out.push(cur);
  return out;
}

/** 1, 2 or 5 times a power of ten, at least `raw`. */
function niceStep(raw: number): number {
  if (!(raw > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(raw));
  const f = raw / p;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}

function sum(vs: Iterable<number>): number {
  let s = 0;
  for (const v of vs) s += v;
  return s;
}

function r(v: number): number {
  return Math.round(v * 10) / 10;
}

function fmt(v: number): string {
  return Number.isInteger(v) ? String(v) : String(Math.round(v * 100) / 100);
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
