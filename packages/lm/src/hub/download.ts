/**
 * One file from a Hub `resolve` URL into `blobs/<etag>`, resumable. `@huggingface/hub`'s
 * `downloadFileToCacheDir` restarts from zero after an interruption, reports no progress and does not
 * check what it wrote, so relign downloads the bytes itself (and uses the library for the API calls):
 * bytes go to `blobs/<etag>.incomplete` (the name Python's huggingface_hub uses, so either tool resumes
 * the other's partial file), a dropped connection is retried with `Range: bytes=<have>-`, and the finished
 * file is checked against its etag (sha256 for LFS files, the git blob sha1 otherwise) before it is renamed
 * into place.
 */
import { nodeCrypto, nodeFs } from '@relign/tensor';

// Node built-ins through @relign/tensor's platform module: a browser bundle gets stand-ins that fail clearly.
const { createHash } = nodeCrypto;
const { open, rename, rm, stat } = nodeFs;

/** A non-2xx answer from the Hub (not retried). */
export class HubHttpError extends Error {
  constructor(
    readonly status: number,
    readonly url: string,
    readonly errorCode: string | undefined,
    message: string,
  ) {
    super(message);
    this.name = 'HubHttpError';
  }
}

export interface DownloadBlobOptions {
  url: string;
  /** Sent with every request (e.g. Authorization). */
  headers: Record<string, string>;
  /** Final path, `blobs/<etag>`. */
  blobPath: string;
  /** Expected size in bytes. */
  size: number;
  /** sha256 (64 hex) or git blob sha1 (40 hex) of the content; other forms are not checked. */
  etag: string;
  /** Called with the bytes on disk so far (including resumed bytes) as data arrives. */
  onBytes?: (downloaded: number) => void;
  /** Extra attempts after a network failure. Default 5. */
  retries?: number;
  /** First pause between attempts, doubled each time. Default 500 ms. */
  retryDelayMs?: number;
}

async function sizeOf(path: string): Promise<number> {
  return stat(path).then(
    (s) => s.size,
    () => 0,
  );
}

async function digest(path: string, etag: string, size: number): Promise<string | undefined> {
  let hash;
  if (/^[0-9a-f]{64}$/.test(etag)) hash = createHash('sha256');
  else if (/^[0-9a-f]{40}$/.test(etag)) hash = createHash('sha1').update(`blob ${size}\0`);
  else return undefined;
  for await (const chunk of (await open(path)).createReadStream()) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Downloads (or finishes downloading) one blob; resolves once `blobPath` holds the verified content. */
export async function downloadBlob(o: DownloadBlobOptions): Promise<void> {
  const partial = `${o.blobPath}.incomplete`;
  const retries = o.retries ?? 5;
  for (let attempt = 0; ; attempt++) {
    let have = await sizeOf(partial);
    try {
      if (have > o.size) have = 0; // longer than the file: not a prefix of it, start over
      if (have < o.size) {
        const res = await fetch(o.url, {
          headers: have > 0 ? { ...o.headers, Range: `bytes=${have}-` } : o.headers,
        });
        if (!res.ok) {
          const text = await res.text().catch(() => '');
          let detail = text.slice(0, 300);
          try {
            detail = (JSON.parse(text) as { error?: string }).error ?? detail;
          } catch {
            // not JSON: keep the text
          }
          throw new HubHttpError(res.status, o.url, res.headers.get('x-error-code') ?? undefined, detail);
        }
        // A 200 (server ignored the range) or a range that starts elsewhere means: start from zero.
        const append =
          have > 0 &&
          res.status === 206 &&
          /^bytes (\d+)-/.exec(res.headers.get('content-range') ?? '')?.[1] === String(have);
        if (!append) have = 0;
        const fh = await open(partial, append ? 'a' : 'w');
        try {
          // Node's web streams are async-iterable (the DOM typings do not say so).
          for await (const chunk of (res.body ?? []) as unknown as AsyncIterable<Uint8Array>) {
            await fh.write(chunk);
            have += chunk.length;
            o.onBytes?.(have);
          }
        } finally {
          await fh.close();
        }
      }
      if (have !== o.size) throw new Error(`the transfer ended at byte ${have} of ${o.size}`);
    } catch (err) {
      if (err instanceof HubHttpError || attempt >= retries) {
        if (err instanceof HubHttpError) throw err;
        throw new Error(
          `${o.url}: download failed after ${attempt + 1} attempts (${(err as Error).message}); run again to ` +
            `resume from the ${await sizeOf(partial)} bytes kept in ${partial}`,
          { cause: err },
        );
      }
      await new Promise((r) => setTimeout(r, (o.retryDelayMs ?? 500) * 2 ** attempt));
      continue;
    }
    const got = await digest(partial, o.etag, o.size);
    if (got !== undefined && got !== o.etag) {
      await rm(partial, { force: true }); // our own partial file, and it is wrong
      throw new Error(
        `${o.url}: the downloaded file's checksum is ${got}, not ${o.etag}: it was corrupted in transfer; run again`,
      );
    }
    await rename(partial, o.blobPath);
    return;
  }
}
