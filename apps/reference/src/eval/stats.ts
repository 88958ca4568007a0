/**
 * Summary statistics of per-sample evaluation values (mean and sample standard deviation).
 */

/** A mean and its sample standard deviation. */
export interface MeanStd {
  mean: number;
  /** Sample standard deviation (divisor n − 1); 0 for fewer than two values. */
  std: number;
}

/**
 * Mean and sample standard deviation of `values`, accumulated in float64.
 *
 * @throws Error when `values` is empty or holds a non-finite number (naming `what` and the index).
 */
export function meanStd(values: ArrayLike<number>, what = 'values'): MeanStd {
  const n = values.length;
  if (n === 0) throw new Error(`meanStd: ${what} is empty; evaluate at least one prompt.`);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const v = values[i]!;
    if (!Number.isFinite(v)) throw new Error(`meanStd: ${what}[${i}] = ${String(v)} is not finite.`);
    sum += v;
  }
  const mean = sum / n;
  if (n < 2) return { mean, std: 0 };
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (values[i]! - mean) ** 2;
  return { mean, std: Math.sqrt(ss / (n - 1)) };
}
