/**
 * Headless Chromium for the report: check that a page renders with no console error and no network
 * request, and screenshot the frontier charts for the README (`docs/frontier.png`).
 *
 * Chromium is driven through the DevTools protocol over a pipe (`--remote-debugging-pipe`: JSON messages
 * separated by NUL on file descriptors 3 and 4), so no WebSocket client or npm dependency is needed.
 * Debian: `apt-get install -y chromium`; elsewhere set `RELIGN_CHROMIUM` to a Chrome/Chromium binary.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';

/** Flags of every launch: headless, offline, no profile state (issue 9). */
export const CHROMIUM_FLAGS: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
  '--disable-quic',
  '--disable-sync',
  '--hide-scrollbars',
  '--mute-audio',
];

const NAMES = ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable', 'chrome'];

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The Chromium binary: `$RELIGN_CHROMIUM`, `$CHROME_PATH`, then `chromium`, `chromium-browser`,
 * `google-chrome(-stable)` on the PATH. `undefined` when none is found.
 */
export function findChromium(): string | undefined {
  for (const env of ['RELIGN_CHROMIUM', 'CHROME_PATH']) {
    const v = process.env[env];
    if (v && executable(v)) return v;
  }
  const dirs = (process.env['PATH'] ?? '').split(delimiter).filter(Boolean);
  for (const name of NAMES) {
    for (const dir of [...dirs, '/usr/bin', '/usr/local/bin']) {
      const p = join(dir, name);
      if (executable(p)) return p;
    }
  }
  return undefined;
}

type Message = {
  id?: number;
  method?: string;
  params?: Record<string, unknown>;
  sessionId?: string;
  result?: unknown;
  error?: { message: string };
};

/** A Chromium process and its DevTools pipe. */
class Browser {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly listeners = new Set<(m: Message) => void>();
  private stderr = '';
  private exited: Promise<void>;
  private closed = false;

  private constructor(
    private readonly proc: ChildProcess,
    private readonly userDataDir: string,
  ) {
    const out = proc.stdio[4] as Readable;
    let buf = '';
    out.setEncoding('utf8');
    out.on('data', (chunk: string) => {
      buf += chunk;
      let i: number;
      while ((i = buf.indexOf('\0')) >= 0) {
        const text = buf.slice(0, i);
        buf = buf.slice(i + 1);
        let msg: Message;
        try {
          msg = JSON.parse(text) as Message;
        } catch {
          continue;
        }
        if (msg.id !== undefined && this.pending.has(msg.id)) {
          const p = this.pending.get(msg.id)!;
          this.pending.delete(msg.id);
          if (msg.error) p.reject(new Error(`chromium: ${msg.error.message}`));
          else p.resolve(msg.result);
        } else {
          for (const l of this.listeners) l(msg);
        }
      }
    });
    (proc.stderr as Readable).setEncoding('utf8');
    (proc.stderr as Readable).on('data', (c: string) => {
      this.stderr = (this.stderr + c).slice(-4000);
    });
    this.exited = new Promise((res) => proc.once('exit', () => res()));
    void this.exited.then(() => {
      for (const p of this.pending.values())
        p.reject(new Error(`chromium exited unexpectedly. Its stderr ends:\n${this.stderr}`));
      this.pending.clear();
    });
  }

  static async launch(exe: string): Promise<Browser> {
    const userDataDir = await mkdtemp(join(tmpdir(), 'relign-chromium-'));
    const proc = spawn(
      exe,
      [...CHROMIUM_FLAGS, `--user-data-dir=${userDataDir}`, '--remote-debugging-pipe', 'about:blank'],
      {
        stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'],
      },
    );
    await new Promise<void>((res, rej) => {
      proc.once('spawn', () => res());
      proc.once('error', (e) => rej(new Error(`could not start ${exe}: ${e.message}`)));
    });
    return new Browser(proc, userDataDir);
  }

  send<T = Record<string, unknown>>(
    method: string,
    params: Record<string, unknown> = {},
    sessionId?: string,
  ): Promise<T> {
    const id = this.nextId++;
    const msg = JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) });
    return new Promise<T>((res, rej) => {
      this.pending.set(id, { resolve: res as (v: unknown) => void, reject: rej });
      (this.proc.stdio[3] as Writable).write(msg + '\0');
    });
  }

  on(listener: (m: Message) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get stderrTail(): string {
    return this.stderr;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.proc.exitCode === null) {
      this.send('Browser.close').catch(() => undefined);
      const timer = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
      await this.exited;
      clearTimeout(timer);
    }
    await rm(this.userDataDir, { recursive: true, force: true }).catch(() => undefined);
  }
}

export interface BrowserOptions {
  /** The Chromium binary. Default {@link findChromium}. */
  chromium?: string;
  /** Give up after this long (ms). Default 60000. */
  timeoutMs?: number;
  /** Viewport width (CSS px). Default 1400. */
  width?: number;
}

/** What a page did while loading, and what it shows. */
export interface PageReport {
  /** `console.*` calls: level (`log`, `error`, `warning`, ...) and text. */
  consoleMessages: { level: string; text: string }[];
  /** Uncaught exceptions. */
  exceptions: string[];
  /** Browser log entries (e.g. a resource that failed to load). */
  logEntries: { level: string; text: string; url?: string }[];
  /** Every URL the page requested. */
  requests: string[];
  /** Requests that would use the network (not `file:`, `data:`, `about:`). */
  externalRequests: string[];
  /** Console errors, exceptions and error log entries, as text: empty for a clean page. */
  errors: string[];
  /** Ids of the `<svg>` elements that rendered with a non-zero size. */
  renderedSvgIds: string[];
  /** `document.title`. */
  title: string;
  /** The final DOM (`document.documentElement.outerHTML`). */
  html: string;
}

function requireChromium(options: BrowserOptions): string {
  const exe = options.chromium ?? findChromium();
  if (exe === undefined) {
    throw new Error(
      'Chromium was not found: install it (Debian: `apt-get install -y chromium`) or set RELIGN_CHROMIUM to a Chrome/Chromium binary.',
    );
  }
  return exe;
}

async function withTimeout<T>(work: Promise<T>, ms: number, browser: Browser, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, rej) => {
    timer = setTimeout(
      () =>
        rej(
          new Error(
            `${what}: chromium did not finish within ${ms} ms. Its stderr ends:\n${browser.stderrTail}`,
          ),
        ),
      ms,
    );
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function remoteText(arg: Record<string, unknown>): string {
  const v = arg['value'];
  if (v !== undefined) return typeof v === 'string' ? v : JSON.stringify(v);
  return String(arg['description'] ?? arg['type'] ?? '');
}

/** Opens `url` in a fresh page, records what happens until `load`, then runs `then(session)`. */
async function withPage<T>(
  url: string,
  options: BrowserOptions,
  what: string,
  then: (b: Browser, sessionId: string, report: PageReport) => Promise<T>,
): Promise<T> {
  const browser = await Browser.launch(requireChromium(options));
  try {
    return await withTimeout(
      (async () => {
        const { targetId } = await browser.send<{ targetId: string }>('Target.createTarget', {
          url: 'about:blank',
        });
        const { sessionId } = await browser.send<{ sessionId: string }>('Target.attachToTarget', {
          targetId,
          flatten: true,
        });
        const report: PageReport = {
          consoleMessages: [],
          exceptions: [],
          logEntries: [],
          requests: [],
          externalRequests: [],
          errors: [],
          renderedSvgIds: [],
          title: '',
          html: '',
        };
        let loaded!: () => void;
        const load = new Promise<void>((res) => (loaded = res));
        browser.on((m) => {
          if (m.sessionId !== sessionId || !m.method) return;
          const p = m.params ?? {};
          if (m.method === 'Runtime.consoleAPICalled') {
            const args = (p['args'] as Record<string, unknown>[] | undefined) ?? [];
            report.consoleMessages.push({ level: String(p['type']), text: args.map(remoteText).join(' ') });
          } else if (m.method === 'Runtime.exceptionThrown') {
            const d = (p['exceptionDetails'] ?? {}) as Record<string, unknown>;
            const ex = d['exception'] as Record<string, unknown> | undefined;
            report.exceptions.push(String(ex?.['description'] ?? d['text'] ?? 'exception'));
          } else if (m.method === 'Log.entryAdded') {
            const e = (p['entry'] ?? {}) as Record<string, unknown>;
            report.logEntries.push({
              level: String(e['level']),
              text: String(e['text']),
              ...(typeof e['url'] === 'string' ? { url: e['url'] } : {}),
            });
          } else if (m.method === 'Network.requestWillBeSent') {
            const req = (p['request'] ?? {}) as Record<string, unknown>;
            report.requests.push(String(req['url']));
          } else if (m.method === 'Page.loadEventFired') {
            loaded();
          }
        });
        for (const domain of ['Runtime', 'Log', 'Network', 'Page'])
          await browser.send(`${domain}.enable`, {}, sessionId);
        await browser.send(
          'Emulation.setDeviceMetricsOverride',
          { width: options.width ?? 1400, height: 900, deviceScaleFactor: 1, mobile: false },
          sessionId,
        );
        const nav = await browser.send<{ errorText?: string }>('Page.navigate', { url }, sessionId);
        if (nav.errorText) throw new Error(`${what}: could not open ${url}: ${nav.errorText}`);
        await load;
        const { result } = await browser.send<{
          result: { value: { title: string; html: string; svgs: string[] } };
        }>(
          'Runtime.evaluate',
          {
            expression: `(() => ({
              title: document.title,
              html: document.documentElement.outerHTML,
              svgs: [...document.querySelectorAll('svg')].filter((s) => {
                const r = s.getBoundingClientRect();
                return s.id && r.width > 0 && r.height > 0;
              }).map((s) => s.id),
            }))()`,
            returnByValue: true,
          },
          sessionId,
        );
        report.title = result.value.title;
        report.html = result.value.html;
        report.renderedSvgIds = result.value.svgs;
        report.externalRequests = report.requests.filter((u) => !/^(file|data|about|blob):/.test(u));
        report.errors = [
          ...report.consoleMessages
            .filter((c) => c.level === 'error' || c.level === 'assert')
            .map((c) => `console.${c.level}: ${c.text}`),
          ...report.exceptions.map((e) => `uncaught: ${e}`),
          ...report.logEntries
            .filter((e) => e.level === 'error')
            .map((e) => `log: ${e.text}${e.url ? ` (${e.url})` : ''}`),
        ];
        return then(browser, sessionId, report);
      })(),
      options.timeoutMs ?? 60_000,
      browser,
      what,
    );
  } finally {
    await browser.close();
  }
}

/**
 * Opens an HTML file in headless Chromium and reports console messages, exceptions, log errors, network
 * requests and the rendered `<svg>` ids (see {@link PageReport}).
 *
 * @throws Error when Chromium is not found (saying how to install it), fails, or times out.
 */
export async function inspectHtml(htmlPath: string, options: BrowserOptions = {}): Promise<PageReport> {
  const url = pathToFileURL(resolve(htmlPath)).href;
  return withPage(url, options, 'inspectHtml', async (_b, _s, report) => report);
}

export interface ScreenshotOptions extends BrowserOptions {
  /** CSS selector of the element to capture (its children's bounding box). Default `#frontier-charts`. */
  selector?: string;
  /** Pixel density of the PNG. Default 2 (sharp on high-DPI screens). */
  scale?: number;
}

/**
 * Screenshots the KL–reward frontier charts as a PNG (for the root README's `docs/frontier.png`).
 *
 * @param htmlOrSvgPath a report (`report/report.html`: the `#frontier-charts` element, i.e. the proxy and
 *   gold frontier charts) or a standalone `.svg` file (captured whole).
 * @param pngPath where to write the PNG (directories are created).
 * @returns `pngPath`.
 * @throws Error when Chromium is not found, or the selector matches nothing.
 */
export async function renderFrontierPng(
  htmlOrSvgPath: string,
  pngPath: string,
  options: ScreenshotOptions = {},
): Promise<string> {
  let page = resolve(htmlOrSvgPath);
  let selector = options.selector ?? '#frontier-charts';
  let tmp: string | undefined;
  if (/\.svg$/i.test(page)) {
    tmp = await mkdtemp(join(tmpdir(), 'relign-svg-'));
    const svg = await readFile(page, 'utf8');
    page = join(tmp, 'page.html');
    await writeFile(
      page,
      `<!DOCTYPE html><html><head><meta charset="utf-8"></head><body style="margin:0;background:#fff"><div id="capture" style="display:inline-block">${svg}</div></body></html>`,
    );
    selector = '#capture';
  }
  try {
    const png = await withPage(
      pathToFileURL(page).href,
      options,
      'renderFrontierPng',
      async (browser, sessionId) => {
        const { result } = await browser.send<{
          result: { value: { x: number; y: number; width: number; height: number } | null };
        }>(
          'Runtime.evaluate',
          {
            expression: `(() => {
            const el = document.querySelector(${JSON.stringify(selector)});
            if (!el) return null;
            const boxes = (el.children.length ? [...el.children] : [el]).map((c) => c.getBoundingClientRect());
            const x0 = Math.min(...boxes.map((b) => b.left)), y0 = Math.min(...boxes.map((b) => b.top));
            const x1 = Math.max(...boxes.map((b) => b.right)), y1 = Math.max(...boxes.map((b) => b.bottom));
            return { x: x0 + window.scrollX, y: y0 + window.scrollY, width: x1 - x0, height: y1 - y0 };
          })()`,
            returnByValue: true,
          },
          sessionId,
        );
        const box = result.value;
        if (box === null || box.width <= 0 || box.height <= 0) {
          throw new Error(
            `renderFrontierPng: nothing matches ${selector} in ${htmlOrSvgPath} (is it a relign report?).`,
          );
        }
        const pad = 8;
        const { data } = await browser.send<{ data: string }>(
          'Page.captureScreenshot',
          {
            format: 'png',
            captureBeyondViewport: true,
            clip: {
              x: Math.max(0, box.x - pad),
              y: Math.max(0, box.y - pad),
              width: box.width + 2 * pad,
              height: box.height + 2 * pad,
              scale: options.scale ?? 2,
            },
          },
          sessionId,
        );
        return Buffer.from(data, 'base64');
      },
    );
    await mkdir(dirname(resolve(pngPath)), { recursive: true });
    await writeFile(pngPath, png);
    return pngPath;
  } finally {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  }
}
