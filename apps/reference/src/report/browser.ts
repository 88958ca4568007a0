/**
 * Headless Chromium for the report: check that a page renders with no console error and no network
 * request, and screenshot the frontier charts for the README (`docs/frontier.png`).
 *
 * Chromium is driven by puppeteer-core over a pipe (no WebSocket), and is the system's (Debian:
 * `apt-get install -y chromium`; elsewhere set `RELIGN_CHROMIUM`): puppeteer-core never downloads a browser.
 * puppeteer-core is loaded on first use, so the `relign` CLI does not need it to run; it is a development
 * dependency of this repository (the report test), and users of these two functions install it themselves.
 */
import { accessSync, constants } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser, Page } from 'puppeteer-core';

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

async function launch(options: BrowserOptions): Promise<Browser> {
  const executablePath = requireChromium(options);
  let puppeteer: typeof import('puppeteer-core');
  try {
    puppeteer = await import('puppeteer-core');
  } catch (err) {
    throw new Error(
      'puppeteer-core is not installed: `npm install --save-dev puppeteer-core` (it drives the Chromium at ' +
        `${executablePath}; it never downloads a browser).`,
      { cause: err },
    );
  }
  return puppeteer.launch({
    executablePath,
    // puppeteer adds its own `--headless=new`.
    headless: true,
    args: CHROMIUM_FLAGS.filter((f) => f !== '--headless'),
    pipe: true,
    timeout: options.timeoutMs ?? 60_000,
  });
}

/** Opens `url` in a fresh page, records what happens until `load`, then runs `then(page, report)`. */
async function withPage<T>(
  url: string,
  options: BrowserOptions,
  what: string,
  then: (page: Page, report: PageReport) => Promise<T>,
): Promise<T> {
  const browser = await launch(options);
  try {
    const page = await browser.newPage();
    page.setDefaultTimeout(options.timeoutMs ?? 60_000);
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
    page.on('console', (msg) => {
      // puppeteer reports the browser's log entries (e.g. "Failed to load resource") as console messages
      // without arguments; `console.*` calls carry theirs.
      const level = msg.type() === 'warn' ? 'warning' : msg.type();
      if (msg.args().length === 0 && msg.location().url !== undefined) {
        report.logEntries.push({ level, text: msg.text(), url: msg.location().url! });
      } else {
        report.consoleMessages.push({ level, text: msg.text() });
      }
    });
    page.on('pageerror', (err) => report.exceptions.push(String(err)));
    page.on('request', (req) => report.requests.push(req.url()));
    await page.setViewport({ width: options.width ?? 1400, height: 900, deviceScaleFactor: 1 });
    try {
      await page.goto(url, { waitUntil: 'load' });
    } catch (err) {
      throw new Error(`${what}: could not open ${url}: ${(err as Error).message}`, { cause: err });
    }
    const state = await page.evaluate(() => ({
      title: document.title,
      html: document.documentElement.outerHTML,
      svgs: Array.from(document.querySelectorAll('svg'))
        .filter((s) => {
          const r = s.getBoundingClientRect();
          return s.id && r.width > 0 && r.height > 0;
        })
        .map((s) => s.id),
    }));
    report.title = state.title;
    report.html = state.html;
    report.renderedSvgIds = state.svgs;
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
    return await then(page, report);
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
  return withPage(url, options, 'inspectHtml', async (_page, report) => report);
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
    const png = await withPage(pathToFileURL(page).href, options, 'renderFrontierPng', async (p) => {
      // The union of the children's boxes: the charts, not the container's full width.
      const box = await p.evaluate((sel) => {
        const el = document.querySelector(sel);
        if (!el) return null;
        const boxes = (el.children.length ? Array.from(el.children) : [el]).map((c) =>
          c.getBoundingClientRect(),
        );
        const x0 = Math.min(...boxes.map((b) => b.left));
        const y0 = Math.min(...boxes.map((b) => b.top));
        const x1 = Math.max(...boxes.map((b) => b.right));
        const y1 = Math.max(...boxes.map((b) => b.bottom));
        return { x: x0 + window.scrollX, y: y0 + window.scrollY, width: x1 - x0, height: y1 - y0 };
      }, selector);
      if (box === null || box.width <= 0 || box.height <= 0) {
        throw new Error(
          `renderFrontierPng: nothing matches ${selector} in ${htmlOrSvgPath} (is it a relign report?).`,
        );
      }
      const pad = 8;
      return p.screenshot({
        type: 'png',
        captureBeyondViewport: true,
        clip: {
          x: Math.max(0, box.x - pad),
          y: Math.max(0, box.y - pad),
          width: box.width + 2 * pad,
          height: box.height + 2 * pad,
          scale: options.scale ?? 2,
        },
      });
    });
    await mkdir(dirname(resolve(pngPath)), { recursive: true });
    await writeFile(pngPath, png);
    return pngPath;
  } finally {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  }
}
