#!/usr/bin/env node
// docs/playground.png: the built playground (npm run build) after an automated run on wasm, photographed in
// headless Chromium (Debian's package, driven by puppeteer-core).
//
//   node scripts/playground-screenshot.mjs [iterations]     (npm run playground:screenshot)
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import puppeteer from 'puppeteer-core';
import { startServer } from '../apps/playground/scripts/serve.mjs';

const iterations = Number(process.argv[2] ?? 12);
const chromium = process.env.RELIGN_CHROMIUM ?? '/usr/bin/chromium';
if (!existsSync(chromium)) {
  console.error(`Chromium not found at ${chromium}: apt-get install -y chromium, or set RELIGN_CHROMIUM.`);
  process.exit(1);
}
const out = fileURLToPath(new URL('../docs/playground.png', import.meta.url));
const server = await startServer();
const browser = await puppeteer.launch({
  executablePath: chromium,
  headless: true,
  protocolTimeout: 600_000,
  // Root in containers and CI runners: Chromium refuses to start there with its sandbox.
  args: ['--no-sandbox'],
});
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 1040, height: 900, deviceScaleFactor: 1 });
  page.on('pageerror', (e) => console.error(`page error: ${e.message}`));
  await page.goto(`${server.url}index.html?autorun=${iterations}&algo=p3o-v2&backend=wasm`);
  await page.waitForFunction(() => document.getElementById('relign-result')?.textContent, {
    timeout: 600_000,
    polling: 1000,
  });
  const result = JSON.parse(await page.$eval('#relign-result', (e) => e.textContent));
  if (!result.done) throw new Error(`the page reported an error: ${result.error}`);
  // The contract's JSON is for machines; the picture shows the page as a person sees it.
  await page.$eval('#relign-result', (e) => (e.hidden = true));
  await page.screenshot({ path: out, fullPage: true });
  console.log(`wrote ${out} (${iterations} iterations of p3o-v2 on ${result.backend})`);
} finally {
  await browser.close();
  await server.close();
}
