/**
 * `metrics.jsonl` of a stage: one JSON object per step (non-finite numbers as null). On resume the lines of
 * steps at or after the first step written again are dropped first, so each step appears once even when the
 * interrupted attempt ran past its last checkpoint.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

function finiteOrNull(_key: string, value: unknown): unknown {
  return typeof value === 'number' && !Number.isFinite(value) ? null : value;
}

export class MetricsFile {
  private started = false;

  /**
   * @param path the file.
   * @param resume keep the existing lines (else the file is emptied).
   */
  constructor(
    readonly path: string,
    private readonly resume: boolean,
  ) {
    mkdirSync(dirname(path), { recursive: true });
    if (!resume || !existsSync(path)) writeFileSync(path, '');
  }

  /** Appends one step's metrics (`step` is required). */
  write(metrics: { step: number } & Record<string, unknown>): void {
    if (!this.started) {
      this.started = true;
      if (this.resume) this.dropFrom(metrics.step);
    }
    appendFileSync(this.path, JSON.stringify(metrics, finiteOrNull) + '\n');
  }

  private dropFrom(step: number): void {
    const kept = readFileSync(this.path, 'utf8')
      .split('\n')
      .filter((line) => {
        if (line.trim() === '') return false;
        try {
          const s = (JSON.parse(line) as { step?: unknown }).step;
          return typeof s === 'number' && s < step;
        } catch {
          return false;
        }
      });
    writeFileSync(this.path, kept.map((l) => l + '\n').join(''));
  }
}

/** Reads a metrics file (lines that do not parse are skipped). */
export function readMetrics(path: string): Record<string, unknown>[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
}
