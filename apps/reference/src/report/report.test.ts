import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { computeFrontier } from '../eval/frontier.js';
import { expectedAlgos, renderReport, writeReport } from './report.js';
import { loadRunData } from './run-data.js';
import { writeSyntheticRun } from './test-fixtures.js';

function svgById(html: string, id: string): string {
  const m = html.match(new RegExp(`<svg id="${id}"[\\s\\S]*?</svg>`));
  if (!m) throw new Error(`no <svg id="${id}">`);
  return m[0];
}

describe('writeReport', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'relign-report-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes one self-contained HTML file with every chart and table', async () => {
    await writeSyntheticRun(dir);
    const path = await writeReport(dir);
    expect(path).toBe(join(dir, 'report', 'report.html'));
    const html = await readFile(path, 'utf8');
    for (const id of [
      'frontier-proxy',
      'frontier-gold',
      'frontier-judge',
      'train-reward',
      'train-kl',
      'rm-accuracy',
    ]) {
      expect(html, id).toContain(`<svg id="${id}"`);
    }
    // Self-contained: no script, no external stylesheet/image/font, nothing fetched.
    expect(html).not.toMatch(/<script|<link|<img|<iframe|@import|url\(/i);
    expect(html).not.toMatch(/(src|href)="(?!#)/);
    // Frontier: SFT + 4 algos × (2 checkpoints + final) = 13 points, each a marker with a tooltip.
    const proxy = svgById(html, 'frontier-proxy');
    expect(proxy.match(/<(circle|polygon) class="marker"[^>]*><title>/g)!.length).toBe(13);
    expect(proxy).toContain('<title>p3o-v2-step-10 (step 10)');
    // One Pareto line per optimizer.
    expect(proxy.match(/class="series-line"/g)!.length).toBe(4);
    // Sample text is escaped, never markup.
    expect(html).toContain('&lt;script&gt;alert(&quot;dpo&quot;)&lt;/script&gt; &amp; more');
    // Tables: win rates (hand values from the fixture: vsSft proxy = 0.5 + shift / 4, shift 0.3 for ppo-max).
    expect(html).toContain('57.5\u202f%');
    expect(html).toMatch(/Head to head/);
    // Reward model accuracy and stage timings.
    const bars = [...svgById(html, 'rm-accuracy').matchAll(/class="bar"[^>]*><title>([^<]*)</g)].map(
      (m) => m[1],
    );
    expect(bars).toEqual([
      'heldOutAccuracy: 81.0\u202f%',
      'humanAccuracy: 68.0\u202f%',
      'labelers.gold.humanAccuracy: 80.0\u202f%',
      'labelers.judge.humanAccuracy: 79.0\u202f%',
    ]);
    // Stage timings: a resumed stage counts its interrupted attempt; a failure shows its error.
    expect(html).toContain('1 min 35 s'); // train: 65 + 30 s
    expect(html).toContain('1 min 52 s'); // total: 12.5 + 95 + 4 s
    expect(html).toContain('failed: <span class="missing">out of &lt;memory&gt;</span>');
    // The truncated metrics line is reported, not fatal.
    expect(html).toMatch(/metrics.jsonl: 1 malformed line\(s\) skipped/);
    // Summary names the best policy by each score (the fixture's best is p3o-v2 everywhere).
    expect(html).toMatch(/Highest gold score[^<]*<b>p3o-v2<\/b>/);
  });

  it('renders a partial run and names what is missing', async () => {
    await writeSyntheticRun(dir, ['ppo-max', 'dpo']);
    const html = await readFile(await writeReport(dir), 'utf8');
    expect(html).toContain('<code>eval/p3o-v1.json (evaluation of p3o-v1)</code>');
    expect(html).toContain('<code>train/p3o-v2/metrics.jsonl (training curves of p3o-v2)</code>');
    expect(html).not.toContain('<code>eval/dpo.json');
    expect(svgById(html, 'frontier-gold').match(/class="marker"[^>]*><title>/g)!.length).toBe(1 + 2 * 3);
  });

  it('renders an empty run directory', async () => {
    const html = await readFile(await writeReport(dir), 'utf8');
    expect(html).toContain('No trained policy has been evaluated yet.');
    expect(html).toContain('<code>config.json (effective config)</code>');
    expect(svgById(html, 'frontier-proxy')).toContain('no data');
    expect(html).toContain('No train/&lt;algo&gt;/metrics.jsonl.');
  });

  it('falls back to frontier/frontier.json when eval/*.json are gone', async () => {
    await writeSyntheticRun(dir, ['dpo']);
    await computeFrontier(dir);
    await rm(join(dir, 'eval'), { recursive: true });
    const data = await loadRunData(dir);
    expect(data.evals).toEqual([]);
    const html = renderReport(data);
    expect(svgById(html, 'frontier-proxy').match(/class="marker"[^>]*><title>/g)!.length).toBe(4);
  });

  it('reads the expected optimizers from options, then config', async () => {
    await writeSyntheticRun(dir, ['dpo']);
    const data = await loadRunData(dir);
    expect(expectedAlgos(data)).toEqual(['ppo-max', 'dpo', 'p3o-v1', 'p3o-v2']);
    expect(expectedAlgos(data, { algos: ['dpo'] })).toEqual(['dpo']);
    const html = renderReport(data, { algos: ['dpo'], title: 'T<1>' });
    expect(html).not.toContain('eval/ppo-max.json');
    expect(html).toContain('<title>T&lt;1&gt;</title>');
  });
});
