/**
 * Progress output: on a TTY one redrawn line per task with a bar, ETA and the key metrics; elsewhere (CI,
 * pipes, files) plain log lines at about every tenth of the task and at its end.
 */

/** Where progress goes (injectable for tests). */
export interface ProgressSink {
  write(text: string): void;
  /** Whether the sink is a terminal (redrawn bar) or not (plain lines). */
  isTTY: boolean;
  /** Terminal width (TTY only). */
  columns?: number;
}

/** A clock in milliseconds (injectable for tests). */
export type Clock = () => number;

/** Formats seconds as `42s`, `3m05s`, `1h02m`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

function formatValue(v: number | string): string {
  if (typeof v === 'string') return v;
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(2);
  if (Number.isInteger(v)) return String(v);
  return v.toFixed(a < 1 ? 3 : a < 100 ? 2 : 1);
}

/** Key metrics as `name value` pairs. */
export function formatMetrics(metrics: Readonly<Record<string, number | string>>): string {
  return Object.entries(metrics)
    .map(([k, v]) => `${k} ${formatValue(v)}`)
    .join(', ');
}

/** One task with a known number of steps. */
export class ProgressTask {
  private done = 0;
  private metrics: Record<string, number | string> = {};
  private t0: number;
  private updated = false;
  private lastDraw = -Infinity;
  private lastPlainDecile = 0;
  private lastPlainTime: number;
  private finished = false;

  constructor(
    private readonly owner: Progress,
    readonly label: string,
    readonly total: number,
    private readonly clock: Clock,
    /** Steps already done before this process (resume): not counted for the ETA. */
    private startAt = 0,
  ) {
    this.t0 = clock();
    this.lastPlainTime = this.t0;
    this.done = startAt;
    if (!owner.sink.isTTY) owner.line(`${label}: ${startAt > 0 ? `resuming at ${startAt}/` : '0/'}${total}`);
  }

  /** Seconds left, extrapolated from this process's steps (undefined before the first step). */
  eta(): number | undefined {
    const doneHere = this.done - this.startAt;
    if (doneHere <= 0) return undefined;
    const perStep = (this.clock() - this.t0) / 1000 / doneHere;
    return perStep * Math.max(0, this.total - this.done);
  }

  /** Reports progress: `done` steps of `total`, with the metrics to show. */
  update(done: number, metrics: Readonly<Record<string, number | string>> = {}): void {
    if (this.finished) return;
    if (!this.updated) {
      this.updated = true;
      // A stage that resumed from a checkpoint reports its first step past the start: count from there.
      if (done - 1 > this.startAt) {
        this.startAt = done;
        this.t0 = this.clock();
      }
    }
    this.done = Math.min(done, this.total);
    this.metrics = { ...metrics };
    const now = this.clock();
    if (this.owner.sink.isTTY) {
      if (now - this.lastDraw >= 100 || this.done === this.total) {
        this.lastDraw = now;
        this.owner.draw(this.render());
      }
      return;
    }
    // Plain lines: each new tenth of the task, or every 30 s, whichever comes first.
    const decile = Math.floor((10 * this.done) / Math.max(1, this.total));
    if (decile > this.lastPlainDecile || now - this.lastPlainTime >= 30_000) {
      this.lastPlainDecile = decile;
      this.lastPlainTime = now;
      this.owner.line(this.plain());
    }
  }

  /** Ends the task with a summary line. */
  finish(summary?: string): void {
    if (this.finished) return;
    this.finished = true;
    const seconds = (this.clock() - this.t0) / 1000;
    this.owner.clear();
    this.owner.line(`${this.label}: ${summary ?? `${this.done}/${this.total}`} (${formatDuration(seconds)})`);
  }

  /** The plain (non-TTY) line. */
  plain(): string {
    const eta = this.eta();
    const m = formatMetrics(this.metrics);
    return `${this.label}: ${this.done}/${this.total}${eta !== undefined ? `, ETA ${formatDuration(eta)}` : ''}${m ? `, ${m}` : ''}`;
  }

  /** The TTY line: label, bar, count, percent, ETA, metrics, cut to the terminal width. */
  render(): string {
    const width = 24;
    const frac = this.total > 0 ? this.done / this.total : 1;
    const filled = Math.round(frac * width);
    const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
    const eta = this.eta();
    const m = formatMetrics(this.metrics);
    const text =
      `${this.label} ${bar} ${this.done}/${this.total} ${Math.floor(frac * 100)}%` +
      ` ETA ${eta !== undefined ? formatDuration(eta) : '?'}${m ? ` | ${m}` : ''}`;
    const cols = this.owner.sink.columns ?? 120;
    return text.length > cols - 1 ? text.slice(0, cols - 2) + '…' : text;
  }
}

/** Progress and log output of the command. */
export class Progress {
  private barShown = false;

  constructor(
    readonly sink: ProgressSink = {
      write: (t) => process.stdout.write(t),
      isTTY: Boolean(process.stdout.isTTY) && !process.env.CI,
      columns: process.stdout.columns,
    },
    private readonly clock: Clock = () => performance.now(),
  ) {}

  /** Starts a task of `total` steps (`startAt` already done, when resuming). */
  task(label: string, total: number, startAt = 0): ProgressTask {
    return new ProgressTask(this, label, total, this.clock, startAt);
  }

  /** A log line (clears a bar first on a TTY). */
  line(text: string): void {
    this.clear();
    this.sink.write(text + '\n');
  }

  /** Redraws the bar line (TTY). */
  draw(text: string): void {
    this.sink.write(`\r\x1b[2K${text}`);
    this.barShown = true;
  }

  /** Removes a drawn bar (TTY). */
  clear(): void {
    if (this.barShown) {
      this.sink.write('\r\x1b[2K');
      this.barShown = false;
    }
  }
}

/** A progress object that prints nothing (library use and tests). */
export function silentProgress(): Progress {
  return new Progress({ write: () => undefined, isTTY: false });
}
