/**
 * relign's wasm GEMM on Web Workers, in headless Chromium (Debian's package, driven by puppeteer-core): a
 * cross-origin-isolated page (COOP same-origin + COEP require-corp, from a local server on 127.0.0.1) starts a
 * dedicated module worker that selects the wasm backend and runs the same products on 1 and 2 threads. The
 * results must be bit-identical, and the second worker must have computed some of them; on the page's main
 * thread (which may not block) relign stays on one thread.
 *
 * Without Chromium the test is skipped with a message, except under CI or RELIGN_REQUIRE_BROWSER=1, where it fails.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import puppeteer, { type Browser } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const chromium = process.env['RELIGN_CHROMIUM'] ?? '/usr/bin/chromium';
const found = existsSync(chromium);
const required = process.env['RELIGN_REQUIRE_BROWSER'] === '1' || Boolean(process.env['CI']);
if (!found && !required) {
  console.warn(
    `threads.test.ts (browser): SKIPPED — Chromium not found at ${chromium}. Install it (Debian: apt-get install -y ` +
      'chromium) or set RELIGN_CHROMIUM; under CI or RELIGN_REQUIRE_BROWSER=1 this is a failure.',
  );
}

const here = dirname(fileURLToPath(import.meta.url));
const wasmDir = join(
  dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm/package.json')),
  'dist',
);

/**
 * Serves the page, its bundle and tfjs's wasm binaries, every response cross-origin isolated; under /plain/ the
 * same files without the isolation headers.
 */
function serve(bundle: string): Promise<{ server: Server; url: string }> {
  const html = '<!doctype html><meta charset="utf-8"><script type="module" src="page.js"></script>';
  const server = createServer((req, res) => {
    const full = new URL(req.url ?? '/', 'http://x').pathname;
    const plain = full.startsWith('/plain/');
    const path = plain ? full.slice('/plain'.length) : full;
    const headers: Record<string, string> = plain
      ? {}
      : { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };
    const wasmFile = /^\/wasm\/(tfjs-backend-wasm[a-z-]*\.wasm)$/.exec(path)?.[1];
    if (path === '/favicon.ico') res.writeHead(204, headers).end();
    else if (path === '/') res.writeHead(200, { ...headers, 'Content-Type': 'text/html' }).end(html);
    else if (path === '/page.js') {
      res.writeHead(200, { ...headers, 'Content-Type': 'text/javascript' }).end(bundle);
    } else if (wasmFile && existsSync(join(wasmDir, wasmFile))) {
      res
        .writeHead(200, { ...headers, 'Content-Type': 'application/wasm' })
        .end(readFileSync(join(wasmDir, wasmFile)));
    } else res.writeHead(404, headers).end('not found');
  });
  return new Promise((ok) =>
    server.listen(0, '127.0.0.1', () => {
      const address = server.address() as { port: number };
      ok({ server, url: `http://127.0.0.1:${address.port}/` });
    }),
  );
}

interface WorkerResult {
  error?: string;
  crossOriginIsolated: boolean;
  hardwareConcurrency: number;
  tfjsThreads: number;
  defaults: { threads: number; host: string };
  one: { ready: number; pooled: number };
  two: { ready: number; pooled: number };
  identical: boolean[];
  maxRelErr: number;
  info: { threads: number; host: string; workersUp: number; products: number; workerChunks: number };
}

describe.skipIf(!found && !required)('wasm GEMM on Web Workers (headless Chromium)', () => {
  let browser: Browser;
  let server: Server;
  let url: string;

  beforeAll(async () => {
    if (!found)
      throw new Error(`Chromium is required here (CI / RELIGN_REQUIRE_BROWSER) but ${chromium} is missing.`);
    // The TypeScript source, bundled as a browser would get it (`#platform` -> the browser side).
    const out = await build({
      entryPoints: [join(here, 'threads-page.ts')],
      bundle: true,
      write: false,
      platform: 'browser',
      format: 'esm',
      target: 'es2022',
      logLevel: 'silent',
    });
    ({ server, url } = await serve(out.outputFiles[0]!.text));
    browser = await puppeteer.launch({ executablePath: chromium, headless: true, args: ['--no-sandbox'] });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await new Promise((done) => (server ? server.close(() => done(undefined)) : done(undefined)));
  });

  /** Opens `path`, waits for the worker's report and returns it with what the page's main thread saw. */
  async function load(path: string) {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    await page.goto(`${url}${path}`);
    await page.waitForFunction(() => (globalThis as { __result?: unknown }).__result, {
      timeout: 90_000,
      polling: 200,
    });
    const result = (await page.evaluate(() => (globalThis as { __result?: unknown }).__result)) as {
      main: { crossOriginIsolated: boolean; info: { threads: number; host: string } };
      worker: WorkerResult;
    };
    await page.close();
    expect(result.worker.error).toBeUndefined();
    expect(errors).toEqual([]);
    return result;
  }

  it('a dedicated worker gets bit-identical products on 1 and 2 threads, the second thread computing some', async () => {
    const { main, worker } = await load('');
    // The page's main thread is isolated too, but may not block: one thread there.
    expect(main).toMatchObject({ crossOriginIsolated: true, info: { threads: 1, host: 'none' } });
    // In the worker: a thread per core by default, on Web Workers.
    expect(worker.crossOriginIsolated).toBe(true);
    expect(worker.defaults).toMatchObject({
      threads: worker.hardwareConcurrency,
      host: worker.hardwareConcurrency > 1 ? 'web-workers' : 'none',
    });
    expect(worker.one).toEqual({ ready: 1, pooled: 0 });
    expect(worker.two).toEqual({ ready: 2, pooled: 3 });
    expect(worker.identical).toEqual([true, true, true]);
    expect(worker.maxRelErr).toBeLessThan(1e-5);
    expect(worker.info).toMatchObject({ threads: 2, host: 'web-workers', workersUp: 1 });
    expect(worker.info.workerChunks).toBeGreaterThan(0);
  }, 180_000);

  it('without cross-origin isolation (no shared memory) the worker computes on one thread', async () => {
    const { main, worker } = await load('plain/');
    expect(main).toMatchObject({ crossOriginIsolated: false, info: { threads: 1, host: 'none' } });
    expect(worker.crossOriginIsolated).toBe(false);
    expect(worker.defaults).toMatchObject({ threads: 1, host: 'none' });
    // Asked for 2 threads, it runs the products on the calling thread.
    expect(worker.two).toEqual({ ready: 1, pooled: 0 });
    expect(worker.identical).toEqual([true, true, true]);
    expect(worker.maxRelErr).toBeLessThan(1e-5);
    expect(worker.info).toMatchObject({ threads: 2, host: 'none', workersUp: 0, workerChunks: 0 });
  }, 180_000);
});
