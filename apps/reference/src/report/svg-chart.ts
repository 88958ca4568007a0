/**
 * Inline SVG charts for the self-contained report: a scatter/line chart with axes, grid, legend and
 * tooltips (`<title>`), and a horizontal bar chart. Plain markup, no script: it renders anywhere, offline.
 */
import { escapeHtml } from './html.js';

/** One point; `label` becomes its tooltip. */
export interface ChartPoint {
  x: number;
  y: number;
  label?: string;
}

export interface ChartSeries {
  name: string;
  /** CSS colour. */
  color: string;
  /** Drawn as markers (unless `markers` is false). */
  points: readonly ChartPoint[];
  /** Whether to draw markers. Default true. */
  markers?: boolean;
  /** A polyline through these points (e.g. the series' Pareto front, or the curve itself). */
  line?: readonly ChartPoint[];
  /** Dashed line. Default false. */
  dashed?: boolean;
  /** Marker shape. Default 'circle'. */
  shape?: 'circle' | 'square' | 'diamond';
}

export interface LineChartSpec {
  /** Element id of the `<svg>` (tests and the README image find charts by it). */
  id: string;
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly ChartSeries[];
  /** Pixels. Default 560 × 380. */
  width?: number;
  height?: number;
  /** Force the x range to include 0 (KL axes). Default false. */
  xFromZero?: boolean;
}

/**
 * "Nice" tick values covering [min, max]: about `count` ticks at a step of 1, 2 or 5 × 10^k.
 * A degenerate range (min = max) is widened around the value.
 */
export function niceTicks(min: number, max: number, count = 5): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max))
    throw new Error(`niceTicks: range [${min}, ${max}] is not finite.`);
  if (min > max) [min, max] = [max, min];
  if (min === max) {
    const pad = min === 0 ? 1 : Math.abs(min) * 0.1;
    min -= pad;
    max += pad;
  }
  const raw = (max - min) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const start = Math.floor(min / step + 1e-9) * step;
  const ticks: number[] = [];
  for (let v = start; v <= max + step * (1 - 1e-9); v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

/** Tick label text with as many decimals as the tick step needs. */
export function tickLabel(v: number, step: number): string {
  const decimals = Math.max(0, Math.min(6, -Math.floor(Math.log10(step) + 1e-9)));
  return (Math.abs(v) < step / 1e6 ? 0 : v).toFixed(decimals);
}

function marker(
  shape: ChartSeries['shape'],
  x: number,
  y: number,
  color: string,
  tip: string,
  cls = 'marker',
): string {
  const t = tip ? `<title>${escapeHtml(tip)}</title>` : '';
  const c = escapeHtml(color);
  if (shape === 'square') {
    return `<rect class="${cls}" x="${(x - 4).toFixed(1)}" y="${(y - 4).toFixed(1)}" width="8" height="8" fill="${c}" stroke="#fff" stroke-width="1">${t}</rect>`;
  }
  if (shape === 'diamond') {
    const p = `${x.toFixed(1)},${(y - 5.5).toFixed(1)} ${(x + 5.5).toFixed(1)},${y.toFixed(1)} ${x.toFixed(1)},${(y + 5.5).toFixed(1)} ${(x - 5.5).toFixed(1)},${y.toFixed(1)}`;
    return `<polygon class="${cls}" points="${p}" fill="${c}" stroke="#fff" stroke-width="1">${t}</polygon>`;
  }
  return `<circle class="${cls}" cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="4.5" fill="${c}" stroke="#fff" stroke-width="1">${t}</circle>`;
}

/**
 * A scatter/line chart as an `<svg>` element string (id `spec.id`, class `chart`). Non-finite points are
 * dropped; with no finite point at all the chart says "no data".
 */
export function lineChart(spec: LineChartSpec): string {
  const W = spec.width ?? 560;
  const H = spec.height ?? 380;
  const m = { left: 62, right: 16, top: 34, bottom: 48 };
  const pw = W - m.left - m.right;
  // Legend under the x-axis label: as many ~100 px entries per row as fit.
  const perRow = Math.max(1, Math.floor(pw / 100));
  m.bottom += Math.ceil(spec.series.length / perRow) * 18;
  const ph = H - m.top - m.bottom;
  const finite = (p: ChartPoint): boolean => Number.isFinite(p.x) && Number.isFinite(p.y);
  const all = spec.series.flatMap((s) => [...s.points, ...(s.line ?? [])]).filter(finite);
  const parts: string[] = [];
  parts.push(
    `<svg id="${escapeHtml(spec.id)}" class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${escapeHtml(spec.title)}">`,
    `<title>${escapeHtml(spec.title)}</title>`,
    `<rect x="0" y="0" width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" class="chart-title">${escapeHtml(spec.title)}</text>`,
  );
  if (all.length === 0) {
    parts.push(`<text x="${W / 2}" y="${H / 2}" text-anchor="middle" class="no-data">no data</text></svg>`);
    return parts.join('');
  }
  const xMin = Math.min(...all.map((p) => p.x));
  const xt = niceTicks(spec.xFromZero ? Math.min(0, xMin) : xMin, Math.max(...all.map((p) => p.x)));
  const yt = niceTicks(Math.min(...all.map((p) => p.y)), Math.max(...all.map((p) => p.y)));
  const [xa, xb] = [xt[0]!, xt[xt.length - 1]!];
  const [ya, yb] = [yt[0]!, yt[yt.length - 1]!];
  const sx = (x: number): number => m.left + ((x - xa) / (xb - xa)) * pw;
  const sy = (y: number): number => m.top + ph - ((y - ya) / (yb - ya)) * ph;
  const xs = xt.length > 1 ? xt[1]! - xt[0]! : 1;
  const ys = yt.length > 1 ? yt[1]! - yt[0]! : 1;
  // Grid and tick labels.
  for (const v of xt) {
    const X = sx(v).toFixed(1);
    parts.push(
      `<line x1="${X}" y1="${m.top}" x2="${X}" y2="${m.top + ph}" class="grid"/>`,
      `<text x="${X}" y="${m.top + ph + 16}" text-anchor="middle" class="tick">${tickLabel(v, xs)}</text>`,
    );
  }
  for (const v of yt) {
    const Y = sy(v).toFixed(1);
    parts.push(
      `<line x1="${m.left}" y1="${Y}" x2="${m.left + pw}" y2="${Y}" class="grid"/>`,
      `<text x="${m.left - 6}" y="${(sy(v) + 4).toFixed(1)}" text-anchor="end" class="tick">${tickLabel(v, ys)}</text>`,
    );
  }
  parts.push(
    `<rect x="${m.left}" y="${m.top}" width="${pw}" height="${ph}" class="frame"/>`,
    `<text x="${m.left + pw / 2}" y="${m.top + ph + 36}" text-anchor="middle" class="axis-label">${escapeHtml(spec.xLabel)}</text>`,
    `<text transform="translate(16 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle" class="axis-label">${escapeHtml(spec.yLabel)}</text>`,
  );
  // Series: lines first, markers on top.
  spec.series.forEach((s, i) => {
    const line = (s.line ?? []).filter(finite);
    if (line.length > 1) {
      const d = line
        .map((p, j) => `${j === 0 ? 'M' : 'L'}${sx(p.x).toFixed(1)} ${sy(p.y).toFixed(1)}`)
        .join(' ');
      parts.push(
        `<path class="series-line" data-series="${i}" d="${d}" fill="none" stroke="${escapeHtml(s.color)}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5 4"' : ''}/>`,
      );
    }
  });
  spec.series.forEach((s, i) => {
    if (s.markers === false) return;
    parts.push(`<g class="series" data-series="${i}">`);
    for (const p of s.points.filter(finite))
      parts.push(marker(s.shape, sx(p.x), sy(p.y), s.color, p.label ?? ''));
    parts.push('</g>');
  });
  const colW = pw / perRow;
  spec.series.forEach((s, i) => {
    const lx = m.left + (i % perRow) * colW;
    const ly = m.top + ph + 56 + Math.floor(i / perRow) * 18;
    parts.push(
      `<g class="legend-item">${marker(s.shape, lx + 6, ly - 4, s.color, '', 'legend-marker')}<text x="${lx + 16}" y="${ly}" class="legend">${escapeHtml(s.name)}</text></g>`,
    );
  });
  parts.push('</svg>');
  return parts.join('');
}

export interface BarChartSpec {
  id: string;
  title: string;
  /** One bar per entry; values in [min, max] of the axis. */
  bars: readonly { label: string; value: number; color?: string }[];
  /** Axis range. Default [0, 1]. */
  min?: number;
  max?: number;
  /** Vertical reference line (e.g. chance level 0.5). */
  reference?: { value: number; label: string };
  width?: number;
  /** Format of the value printed after each bar. */
  format?: (v: number) => string;
}

/** A horizontal bar chart as an `<svg>` element string (id `spec.id`, class `chart`). */
export function barChart(spec: BarChartSpec): string {
  const W = spec.width ?? 560;
  const rowH = 26;
  const m = { left: 190, right: 70, top: 34, bottom: 30 };
  const H = m.top + m.bottom + Math.max(1, spec.bars.length) * rowH;
  const lo = spec.min ?? 0;
  const hi = spec.max ?? 1;
  const pw = W - m.left - m.right;
  const sx = (v: number): number => m.left + ((Math.min(hi, Math.max(lo, v)) - lo) / (hi - lo)) * pw;
  const f = spec.format ?? ((v: number) => v.toFixed(3));
  const parts = [
    `<svg id="${escapeHtml(spec.id)}" class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${escapeHtml(spec.title)}">`,
    `<title>${escapeHtml(spec.title)}</title>`,
    `<rect x="0" y="0" width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" class="chart-title">${escapeHtml(spec.title)}</text>`,
  ];
  if (spec.bars.length === 0) {
    parts.push(
      `<text x="${W / 2}" y="${m.top + 16}" text-anchor="middle" class="no-data">no data</text></svg>`,
    );
    return parts.join('');
  }
  spec.bars.forEach((b, i) => {
    const y = m.top + i * rowH;
    const ok = Number.isFinite(b.value);
    parts.push(
      `<text x="${m.left - 8}" y="${y + 17}" text-anchor="end" class="tick">${escapeHtml(b.label)}</text>`,
      `<rect class="bar" x="${m.left}" y="${y + 4}" width="${ok ? (sx(b.value) - m.left).toFixed(1) : 0}" height="${rowH - 8}" fill="${escapeHtml(b.color ?? '#4c78a8')}"><title>${escapeHtml(`${b.label}: ${ok ? f(b.value) : '–'}`)}</title></rect>`,
      `<text x="${ok ? (sx(b.value) + 6).toFixed(1) : m.left + 6}" y="${y + 17}" class="tick">${ok ? f(b.value) : '–'}</text>`,
    );
  });
  const yEnd = m.top + spec.bars.length * rowH;
  parts.push(`<line x1="${m.left}" y1="${m.top}" x2="${m.left}" y2="${yEnd}" class="axis"/>`);
  const ticks = niceTicks(lo, hi, 4);
  const step = ticks.length > 1 ? ticks[1]! - ticks[0]! : 1;
  for (const v of ticks) {
    if (v < lo - 1e-12 || v > hi + 1e-12) continue;
    parts.push(
      `<text x="${sx(v).toFixed(1)}" y="${yEnd + 16}" text-anchor="middle" class="tick">${tickLabel(v, step)}</text>`,
    );
  }
  if (spec.reference) {
    const X = sx(spec.reference.value).toFixed(1);
    parts.push(
      `<line x1="${X}" y1="${m.top}" x2="${X}" y2="${yEnd}" class="reference"/>`,
      `<text x="${X}" y="${m.top - 2}" text-anchor="middle" class="tick">${escapeHtml(spec.reference.label)}</text>`,
    );
  }
  parts.push('</svg>');
  return parts.join('');
}
