/**
 * Test helper (not exported): a Hugging Face Hub stand-in on 127.0.0.1 serving fixture repos with the
 * requests `@huggingface/hub` and `resolveModelDir` make, answered the way huggingface.co answers them:
 *   GET  /api/models/{id}/revision/{rev}?expand=…  -> { id, sha, siblings: [{ rfilename }], … }
 *   POST /api/models/{id}/paths-info/{rev}          -> [{ type, path, oid, size, lfs? }]
 *   GET  /{id}/resolve/{rev}/{path}                 -> the bytes; ETag, X-Repo-Commit, Range -> 206
 * Gated repos answer 401 without the right Bearer token; unknown repos 404 (X-Error-Code as the Hub sends).
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeFile {
  path: string;
  content: Uint8Array;
  /** Stored with Git LFS: etag = sha256 of the content; otherwise the git blob sha1. */
  lfs?: boolean;
}

export interface FakeRepo {
  id: string;
  sha: string;
  files: FakeFile[];
  /** Requires `Authorization: Bearer <token>`. */
  gated?: boolean;
}

export interface FakeRequest {
  method: string;
  url: string;
  authorization?: string;
  range?: string;
}

export interface FakeHub {
  url: string;
  requests: FakeRequest[];
  /** Paths whose next download is cut off after half the bytes (the connection is destroyed). */
  dropOnce: Set<string>;
  close(): Promise<void>;
}

export function gitBlobSha1(content: Uint8Array): string {
  return createHash('sha1').update(`blob ${content.length}\0`).update(content).digest('hex');
}

export function sha256(content: Uint8Array): string {
  return createHash('sha256').update(content).digest('hex');
}

function json(res: ServerResponse, status: number, body: unknown, errorCode?: string): void {
  const headers: Record<string, string> = { 'Content-Type': 'application/json' };
  if (errorCode) headers['X-Error-Code'] = errorCode;
  res.writeHead(status, headers).end(JSON.stringify(body));
}

async function body(req: IncomingMessage): Promise<string> {
  let text = '';
  for await (const chunk of req) text += chunk;
  return text;
}

export async function startFakeHub(repos: FakeRepo[], token = 'hf_test_token'): Promise<FakeHub> {
  const requests: FakeRequest[] = [];
  const dropOnce = new Set<string>();
  const byId = new Map(repos.map((r) => [r.id, r]));

  const server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://x');
      requests.push({
        method: req.method ?? '',
        url: req.url ?? '',
        authorization: req.headers.authorization,
        range: req.headers.range,
      });
      const path = decodeURIComponent(url.pathname);
      const api = /^\/api\/models\/(.+)\/(revision|paths-info)\/([^/]+)$/.exec(path);
      const resolve = /^\/([^/]+\/[^/]+|[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path);
      const repo = byId.get((api ?? resolve)?.[1] ?? '');
      if (!repo) return json(res, 404, { error: 'Repository not found' }, 'RepositoryNotFound');
      if (repo.gated && req.headers.authorization !== `Bearer ${token}`) {
        return json(
          res,
          401,
          {
            error: `Access to model ${repo.id} is restricted. You must have access to it and be authenticated to access it. Please log in.`,
          },
          'GatedRepo',
        );
      }
      const rev = (api ?? resolve)![api ? 3 : 2]!;
      if (rev !== 'main' && rev !== repo.sha)
        return json(res, 404, { error: `Invalid rev id: ${rev}` }, 'RevisionNotFound');
      const info = (f: FakeFile) => ({
        type: 'file',
        path: f.path,
        oid: f.lfs ? gitBlobSha1(new TextEncoder().encode(`lfs pointer ${f.path}`)) : gitBlobSha1(f.content),
        size: f.content.length,
        ...(f.lfs ? { lfs: { oid: sha256(f.content), size: f.content.length, pointerSize: 134 } } : {}),
      });
      if (api?.[2] === 'revision' && req.method === 'GET') {
        return json(res, 200, {
          _id: 'x',
          id: repo.id,
          sha: repo.sha,
          private: false,
          gated: repo.gated ? 'auto' : false,
          downloads: 0,
          likes: 0,
          lastModified: '2026-01-01T00:00:00.000Z',
          siblings: repo.files.map((f) => ({ rfilename: f.path })),
        });
      }
      if (api?.[2] === 'paths-info' && req.method === 'POST') {
        const { paths } = JSON.parse(await body(req)) as { paths: string[] };
        return json(res, 200, repo.files.filter((f) => paths.includes(f.path)).map(info));
      }
      const file = resolve && repo.files.find((f) => f.path === resolve[3]);
      if (!file || req.method !== 'GET') return json(res, 404, { error: 'Entry not found' }, 'EntryNotFound');
      const i = info(file);
      const headers: Record<string, string> = {
        ETag: `"${i.oid}"`,
        'X-Repo-Commit': repo.sha,
        'Accept-Ranges': 'bytes',
        'Content-Type': 'application/octet-stream',
      };
      if (i.lfs)
        Object.assign(headers, { 'X-Linked-Etag': `"${i.lfs.oid}"`, 'X-Linked-Size': String(i.size) });
      let start = 0;
      const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
      if (m) start = Number(m[1]);
      const bytes = file.content.subarray(start);
      headers['Content-Length'] = String(bytes.length);
      if (m) headers['Content-Range'] = `bytes ${start}-${file.content.length - 1}/${file.content.length}`;
      res.writeHead(m ? 206 : 200, headers);
      if (dropOnce.delete(file.path)) {
        // Cut the connection a moment after the half has gone out: when the bytes and the close arrive together,
        // fetch's body stream errors with the bytes still queued (a web stream drops its queue on error), and the
        // client would rightly start over instead of resuming.
        res.write(bytes.subarray(0, bytes.length >> 1), () => setTimeout(() => res.socket?.destroy(), 150));
        return;
      }
      res.end(bytes);
    })();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    dropOnce,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
