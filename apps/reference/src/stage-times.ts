/**
 * The wall-clock time of a run's stages from their records (`stages.json`): train stages that ran
 * concurrently (`train.parallel`) overlap, so their times add up to more than the run took.
 */

/** What the computation reads of a stage record. */
export interface TimedStage {
  /** ISO time the last attempt started. */
  startedAt?: string;
  /** Seconds of the last attempt. */
  seconds?: number;
  /** Seconds of earlier, interrupted attempts. */
  previousSeconds?: number;
}

/**
 * Time covered by the stages' last attempts (overlaps counted once), plus their earlier attempts; a record
 * without a start time counts its seconds in full.
 */
export function wallClockSeconds(stages: readonly TimedStage[]): number {
  const spans: [number, number][] = [];
  let loose = 0;
  for (const s of stages) {
    const start = s.startedAt === undefined ? NaN : Date.parse(s.startedAt) / 1000;
    if (Number.isFinite(start)) spans.push([start, start + (s.seconds ?? 0)]);
    else loose += s.seconds ?? 0;
  }
  spans.sort((x, y) => x[0] - y[0]);
  let covered = 0;
  let end = -Infinity;
  for (const [a, b] of spans) {
    if (b > end) covered += b - Math.max(a, end);
    end = Math.max(end, b);
  }
  return covered + loose + stages.reduce((a, s) => a + (s.previousSeconds ?? 0), 0);
}
