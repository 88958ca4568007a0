/**
 * The report in a real browser (issue 9): headless Chromium opens it and must see no console error, no
 * exception, no network request, and every chart rendered with a size. puppeteer-core drives Debian's
 * `chromium` package (`.ci/run` installs it); without it the test is skipped with a message, unless
 * RELIGN_REQUIRE_BROWSER=1 (then it fails).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findChromium, inspectHtml, renderFrontierPng } from './browser.js';
import { writeReport } from './report.js';
import { writeSyntheticRun } from './test-fixtures.js';

const chromium = findChromium();
const required = process.env['RELIGN_REQUIRE_BROWSER'] === '1';
if (chromium === undefined && !required) {
  console.warn(
    'browser.test.ts: SKIPPED — Chromium not found. Install it (Debian: `apt-get install -y chromium`) or set ' +
      'RELIGN_CHROMIUM; set RELIGN_REQUIRE_BROWSER=1 to make this a failure.',
  );
}

function pngSize(png: Buffer): { width: number; height: number } {
  expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
  expect(png.subarray(12, 16).toString('ascii')).toBe('IHDR');
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}

describe.skipIf(chromium === undefined && !required)('report in headless Chromium', () => {
  let dir: string;
  let report: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'relign-browser-'));
    await writeSyntheticRun(join(dir, 'run'));
    report = await writeReport(join(dir, 'run'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('renders with no console error and no network request, with every chart', async () => {
    const page = await inspectHtml(report);
    expect(page.errors).toEqual([]);
    expect(page.consoleMessages).toEqual([]);
    expect(page.externalRequests).toEqual([]);
    expect(page.title).toBe('relign run report');
    for (const id of [
      'frontier-proxy',
      'frontier-gold',
      'frontier-judge',
      'train-reward',
      'train-kl',
      'rm-accuracy',
    ]) {
      expect(page.renderedSvgIds, id).toContain(id);
    }
    // The escaped sample text stayed text: no <script> element in the live DOM.
    expect(page.html).not.toMatch(/<script/i);
    expect(page.html).toContain('alert(');
  });

  it('catches console errors, exceptions and network requests (negative control)', async () => {
    const bad = join(dir, 'bad.html');
    await writeFile(
      bad,
      '<!DOCTYPE html><html><head><title>bad</title></head><body><img src="http://relign.invalid/x.png">' +
        '<script>console.error("boom"); console.log("fine"); missingFunction();</script></body></html>',
    );
    const page = await inspectHtml(bad);
    expect(page.errors.some((e) => e === 'console.error: boom')).toBe(true);
    expect(page.errors.some((e) => /uncaught: ReferenceError: missingFunction is not defined/.test(e))).toBe(
      true,
    );
    expect(page.consoleMessages).toContainEqual({ level: 'log', text: 'fine' });
    expect(page.externalRequests).toContain('http://relign.invalid/x.png');
    expect(page.renderedSvgIds).toEqual([]);
  });

  it('renders the frontier charts to a PNG (README image), from the report or an SVG', async () => {
    const png = join(dir, 'out', 'frontier.png');
    expect(await renderFrontierPng(report, png)).toBe(png);
    const size = pngSize(await readFile(png));
    // Two 560 × 380 charts side by side (12 px gap, 8 px padding, 1 px borders) at scale 2.
    expect(size.width).toBeGreaterThanOrEqual(2 * (2 * 560 + 12));
    expect(size.width).toBeLessThan(2 * (2 * 560 + 12 + 40));
    expect(size.height).toBeGreaterThanOrEqual(2 * 380);
    expect(size.height).toBeLessThan(2 * (380 + 40));

    const html = await readFile(report, 'utf8');
    const svgPath = join(dir, 'gold.svg');
    await writeFile(svgPath, html.match(/<svg id="frontier-gold"[\s\S]*?<\/svg>/)![0]);
    const one = pngSize(
      await readFile(await renderFrontierPng(svgPath, join(dir, 'gold.png'), { scale: 1 })),
    );
    expect(one.width).toBeGreaterThanOrEqual(560);
    expect(one.width).toBeLessThanOrEqual(560 + 16);

    await expect(renderFrontierPng(report, join(dir, 'x.png'), { selector: '#nope' })).rejects.toThrow(
      /nothing matches #nope/,
    );
  });
});
