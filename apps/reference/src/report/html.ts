/**
 * HTML text helpers of the report: escaping and number formatting.
 */

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Escapes text for HTML/SVG content and attribute values (`& < > " '`). */
export function escapeHtml(text: string): string {
  return String(text).replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

/**
 * A number for a table or tooltip: `digits` decimals for |x| < 1000 (trailing zeros kept, so columns
 * align), no decimals from 1000 on, '–' for undefined / non-finite.
 */
export function fmt(x: number | undefined | null, digits = 3): string {
  if (x === undefined || x === null || !Number.isFinite(x)) return '–';
  if (Math.abs(x) >= 1000) return x.toFixed(0);
  return x.toFixed(digits);
}

/** A fraction as a percentage with one decimal ("57.0 %"). */
export function pct(x: number | undefined | null): string {
  if (x === undefined || x === null || !Number.isFinite(x)) return '–';
  return `${(100 * x).toFixed(1)}\u202f%`;
}

/** Seconds as "12.3 s" or "4 min 05 s". */
export function duration(seconds: number | undefined | null): string {
  if (seconds === undefined || seconds === null || !Number.isFinite(seconds)) return '–';
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const m = Math.floor(seconds / 60);
  const s = Math.round(seconds - 60 * m);
  return `${m} min ${String(s).padStart(2, '0')} s`;
}
