/** A one-line download progress bar for terminals. */

/** What {@link resolveModelDir} reports as a file downloads. */
export interface DownloadProgress {
  /** The Hub repo id. */
  repo: string;
  /** The file's path in the repo. */
  file: string;
  /** Bytes on disk so far (resumed bytes included). */
  downloaded: number;
  /** The file's size. */
  total: number;
  /** True on the last event for this file (downloaded === total). */
  done: boolean;
}

function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

/**
 * A progress callback that draws `file [=====>     ] 45% 12.3/27.0 MB` on `stream` (default stderr),
 * redrawn at most every `intervalMs`, and a finished line per file. Does nothing when `stream` is not a TTY
 * (so logs and CI output stay clean).
 */
export function terminalProgress(
  stream: NodeJS.WriteStream = process.stderr,
  intervalMs = 100,
): (p: DownloadProgress) => void {
  let last = 0;
  return (p) => {
    if (!stream.isTTY) return;
    const now = Date.now();
    if (!p.done && now - last < intervalMs) return;
    last = now;
    const width = Math.max(10, Math.min(40, (stream.columns ?? 80) - 50));
    const frac = p.total > 0 ? p.downloaded / p.total : 1;
    const fill = Math.round(frac * width);
    const bar =
      '='.repeat(Math.max(0, fill - 1)) + (fill > 0 ? (p.done ? '=' : '>') : '') + ' '.repeat(width - fill);
    const name = p.file.length > 30 ? '…' + p.file.slice(-29) : p.file;
    stream.write(
      `\r${name} [${bar}] ${String(Math.floor(frac * 100)).padStart(3)}% ${mb(p.downloaded)}/${mb(p.total)}\x1b[K` +
        (p.done ? '\n' : ''),
    );
  };
}
