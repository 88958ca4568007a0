/**
 * The run report (issue 9): one self-contained HTML file — inline CSS and inline SVG charts, no script,
 * no external resource — with the KL–reward frontier (proxy, gold, judge), the evaluation and win-rate
 * tables, training curves, the reward model's accuracy on human labels, sample responses side by side,
 * stage timings and the effective config. Renders whatever parts a run has and lists what is missing.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '@relign/tensor';
import { frontierPoints, paretoFront, type FrontierPoint } from '../eval/frontier.js';
import type { EvalResult, SampleRecord } from '../eval/types.js';
import { duration, escapeHtml, fmt, pct } from './html.js';
import { loadRunData, type RunData, type StageRecord } from './run-data.js';
import { barChart, lineChart, type ChartSeries } from './svg-chart.js';
import { wallClockSeconds } from '../stage-times.js';

/** The optimizers of the default pipeline, in display order. */
export const DEFAULT_ALGOS = ['ppo-max', 'dpo', 'p3o-v1', 'p3o-v2', 'grpo', 'rloo'] as const;

const COLORS: Record<string, string> = {
  sft: '#7f7f7f',
  'ppo-max': '#d62728',
  dpo: '#1f77b4',
  'p3o-v1': '#2ca02c',
  'p3o-v2': '#9467bd',
  grpo: '#ff7f0e',
  rloo: '#17becf',
};
const EXTRA_COLORS = ['#8c564b', '#e377c2', '#bcbd22', '#393b79', '#637939', '#843c39'];

/** The report's colour of a series (fixed for the built-in optimizers, then a palette in order). */
export function algoColor(algo: string, others: readonly string[] = []): string {
  const known = COLORS[algo];
  if (known !== undefined) return known;
  const i = Math.max(0, others.filter((a) => COLORS[a] === undefined).indexOf(algo));
  return EXTRA_COLORS[i % EXTRA_COLORS.length]!;
}

export interface ReportOptions {
  /** Optimizers the run was meant to have (missing ones are named). Default: from config.json, else the four built-ins. */
  algos?: readonly string[];
  /** Prompts shown in the side-by-side samples. Default 8. */
  maxSamples?: number;
  /** Page title. Default "relign run report". */
  title?: string;
  /** Output path. Default `<runDir>/report/report.html`. */
  outPath?: string;
}

const isFinal = (name: string): boolean => !/-step-\d+$/.test(name);

function stringArray(v: unknown): string[] | undefined {
  return Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'string')
    ? (v as string[])
    : undefined;
}

/** The optimizers a run was meant to have: options, then config (`algos`, `train.algos`, `algorithms`). */
export function expectedAlgos(data: RunData, options: ReportOptions = {}): string[] {
  if (options.algos) return [...options.algos];
  const c = data.config ?? {};
  const train = c['train'];
  return (
    stringArray(c['algos']) ??
    stringArray(
      train !== null && typeof train === 'object' ? (train as Record<string, unknown>)['algos'] : undefined,
    ) ??
    stringArray(c['algorithms']) ?? [...DEFAULT_ALGOS]
  );
}

/** Display order of series: SFT, the expected optimizers in order, then any other, alphabetically. */
function orderAlgos(present: Iterable<string>, expected: readonly string[]): string[] {
  const set = new Set(present);
  const out = ['sft', ...expected].filter((a) => set.has(a));
  for (const a of [...set].sort()) if (!out.includes(a)) out.push(a);
  return [...new Set(out)];
}

function pointLabel(p: FrontierPoint, y: number): string {
  const extra = [
    p.klCoef !== undefined ? `β=${p.klCoef}` : '',
    p.seed !== undefined ? `seed ${String(p.seed)}` : '',
  ].filter(Boolean);
  return `${p.name} (step ${p.step}${extra.length ? ', ' + extra.join(', ') : ''}): KL ${fmt(p.kl)}, reward ${fmt(y)}`;
}

function frontierChart(
  id: string,
  title: string,
  yLabel: string,
  points: readonly FrontierPoint[],
  algos: string[],
  y: (p: FrontierPoint) => number,
): string {
  const series: ChartSeries[] = algos.map((algo) => {
    const pts = points.filter((p) => p.algo === algo);
    const s: ChartSeries = {
      name: algo === 'sft' ? 'SFT' : algo,
      color: algoColor(algo, algos),
      points: pts.map((p) => ({ x: p.kl, y: y(p), label: pointLabel(p, y(p)) })),
      shape: algo === 'sft' ? 'diamond' : 'circle',
    };
    // The series' frontier: best reward reached at each KL budget (P3O paper, Fig. 2 style).
    if (algo !== 'sft' && pts.length > 1) s.line = paretoFront(pts, y).map((p) => ({ x: p.kl, y: y(p) }));
    return s;
  });
  return lineChart({
    id,
    title,
    xLabel: 'KL(π ‖ π_SFT) per sequence (k1, nats)',
    yLabel,
    series,
    xFromZero: true,
  });
}

function section(id: string, title: string, body: string): string {
  return `<section id="${id}"><h2>${escapeHtml(title)}</h2>${body}</section>`;
}

function table(head: readonly string[], rows: readonly (readonly string[])[], cls = ''): string {
  return (
    `<div class="table-wrap"><table${cls ? ` class="${cls}"` : ''}><thead><tr>${head.map((h) => `<th>${h}</th>`).join('')}</tr></thead>` +
    `<tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`).join('')}</tbody></table></div>`
  );
}

const ms = (m: { mean: number; std: number } | undefined): string =>
  m === undefined ? '–' : `${fmt(m.mean)} <span class="std">± ${fmt(m.std)}</span>`;

/** What the scores of a run's task are called (`config.task`; the reviews when absent). */
interface TaskWords {
  task: string;
  proxy: string;
  gold: string;
  proxyChart: string;
  goldChart: string;
}

const REVIEW_WORDS: TaskWords = {
  task: 'make the model write positive reviews',
  proxy: 'proxy reward (what RL optimised)',
  gold: 'gold score (the labeler behind the preferences)',
  proxyChart: 'Proxy reward (reward model) vs KL',
  goldChart: 'Gold score (VADER) vs KL',
};

/** Task arithmetic: RL optimised the checkable reward; the gold score is accuracy on held-out problems. */
const ARITHMETIC_WORDS: TaskWords = {
  task: 'answer "a+b=" problems (checkable reward)',
  proxy: 'reward (the checkable reward RL optimised)',
  gold: 'held-out accuracy',
  proxyChart: 'Reward (checkable) vs KL',
  goldChart: 'Held-out accuracy vs KL',
};

function taskWords(data: RunData): TaskWords {
  return data.config?.['task'] === 'arithmetic' ? ARITHMETIC_WORDS : REVIEW_WORDS;
}

function summarySection(evals: readonly EvalResult[], order: string[], words = REVIEW_WORDS): string {
  const finals = evals.filter((r) => isFinal(r.name) && r.algo !== 'sft');
  const sft = evals.find((r) => r.name === 'sft');
  if (finals.length === 0) {
    return section('summary', 'Summary', '<p class="missing">No trained policy has been evaluated yet.</p>');
  }
  const best = (key: 'gold' | 'judge' | 'proxy'): EvalResult =>
    finals.reduce((a, b) => (b[key].mean > a[key].mean ? b : a));
  const line = (key: 'gold' | 'judge' | 'proxy', what: string): string => {
    const b = best(key);
    const base = sft ? ` (SFT: ${fmt(sft[key].mean)})` : '';
    return `<li>Highest ${what}: <b>${escapeHtml(b.name)}</b>, ${fmt(b[key].mean)} at KL ${fmt(b.klToSft.mean)}${base}.</li>`;
  };
  const sorted = [...finals].sort((a, b) => order.indexOf(a.algo) - order.indexOf(b.algo));
  const rows = sorted.map((r) => [
    `<span class="swatch" style="background:${algoColor(r.algo, order)}"></span>${escapeHtml(r.name)}`,
    fmt(r.klToSft.mean),
    fmt(r.proxy.mean),
    fmt(r.gold.mean),
    fmt(r.judge.mean),
    pct(r.winRates?.vsSft?.proxy),
    pct(r.winRates?.vsSft?.judge),
  ]);
  return section(
    'summary',
    'Summary',
    `<ul>${line('proxy', words.proxy)}${line('gold', words.gold)}${line('judge', 'judge score (independent labeler)')}</ul>` +
      table(
        ['policy', 'KL to SFT', 'proxy', 'gold', 'judge', 'win vs SFT (proxy)', 'win vs SFT (judge)'],
        rows,
      ),
  );
}

function missingSection(data: RunData, algos: readonly string[]): string {
  const items: string[] = [];
  const evalNames = new Set(data.evals.map((r) => r.name));
  if (!data.config) items.push('config.json (effective config)');
  if (!data.stages) items.push('stages.json (stage timings)');
  if (!evalNames.has('sft')) items.push('eval/sft.json (the SFT baseline evaluation)');
  for (const a of algos) {
    if (!evalNames.has(a)) items.push(`eval/${a}.json (evaluation of ${a})`);
    if (!data.training.some((t) => t.algo === a))
      items.push(`train/${a}/metrics.jsonl (training curves of ${a})`);
  }
  if (!data.rewardEval) items.push('reward/eval.json (reward-model accuracy)');
  for (const r of data.evals) {
    if (isFinal(r.name) && !data.samples.has(r.name))
      items.push(`samples/${r.name}.jsonl (sample responses)`);
  }
  if (items.length === 0 && data.problems.length === 0) return '';
  const body =
    (items.length
      ? `<p>Not in this run (the sections below show what there is):</p><ul>${items.map((i) => `<li><code>${escapeHtml(i)}</code></li>`).join('')}</ul>`
      : '') +
    (data.problems.length
      ? `<p>Could not be read:</p><ul>${data.problems.map((p) => `<li><code>${escapeHtml(p)}</code></li>`).join('')}</ul>`
      : '');
  return section('missing', 'Missing pieces', `<div class="missing">${body}</div>`);
}

function frontierSection(points: readonly FrontierPoint[], algos: string[], words = REVIEW_WORDS): string {
  const intro =
    '<p>One point per evaluated checkpoint, one series per optimizer (line: the series’ frontier, the best reward ' +
    'reached at each KL budget). x: KL to the SFT model per sequence, the mean k1 estimate on the policy’s own ' +
    'samples. Up and to the left is better. Hover a point for its checkpoint.</p>';
  return section(
    'frontier',
    'KL–reward frontier',
    intro +
      `<div id="frontier-charts" class="charts">${frontierChart('frontier-proxy', words.proxyChart, 'proxy reward', points, algos, (p) => p.proxy)}` +
      `${frontierChart('frontier-gold', words.goldChart, words === ARITHMETIC_WORDS ? 'accuracy' : 'gold score', points, algos, (p) => p.gold)}</div>` +
      `<div class="charts">${frontierChart('frontier-judge', 'Judge score vs KL', 'judge score', points, algos, (p) => p.judge)}</div>`,
  );
}

function evalTableSection(evals: readonly EvalResult[], order: string[]): string {
  if (evals.length === 0)
    return section('evaluation', 'Evaluation', '<p class="missing">No evaluations (eval/*.json).</p>');
  const sorted = [...evals].sort(
    (a, b) =>
      order.indexOf(a.algo) - order.indexOf(b.algo) || a.step - b.step || a.name.localeCompare(b.name),
  );
  const rows = sorted.map((r) => [
    `<span class="swatch" style="background:${algoColor(r.algo, order)}"></span>${escapeHtml(r.name)}`,
    String(r.step),
    String(r.n ?? '–'),
    ms(r.klToSft),
    ms(r.proxy),
    ms(r.gold),
    ms(r.judge),
    fmt(r.length?.mean, 1),
    pct(r.eosRate),
    fmt(r.distinct1),
    fmt(r.distinct2),
    fmt(r.repetition),
    duration(r.seconds),
  ]);
  return section(
    'evaluation',
    'Evaluation',
    '<p>Mean ± standard deviation over prompts (one sampled response each). Collapse signs: distinct-n falls and ' +
      'repetition (repeated-bigram fraction within a response) rises when a policy games its reward.</p>' +
      table(
        [
          'name',
          'step',
          'n',
          'KL to SFT',
          'proxy',
          'gold',
          'judge',
          'length',
          'EOS',
          'distinct-1',
          'distinct-2',
          'repetition',
          'time',
        ],
        rows,
      ),
  );
}

function winRateSection(evals: readonly EvalResult[], order: string[]): string {
  const finals = evals
    .filter((r) => isFinal(r.name))
    .sort((a, b) => order.indexOf(a.algo) - order.indexOf(b.algo));
  if (finals.length === 0) return section('win-rates', 'Win rates', '<p class="missing">No evaluations.</p>');
  const names = finals.map((r) => r.name);
  const vs = table(
    ['policy', 'vs SFT by proxy', 'vs SFT by judge'],
    finals.map((r) => [escapeHtml(r.name), pct(r.winRates?.vsSft?.proxy), pct(r.winRates?.vsSft?.judge)]),
    'win-rates',
  );
  const hasH2h = finals.some((r) => r.winRates?.headToHead && Object.keys(r.winRates.headToHead).length > 0);
  const matrix = (key: 'proxy' | 'judge'): string =>
    table(
      [`row beats column (by ${key})`, ...names.map(escapeHtml)],
      finals.map((r) => [
        `<b>${escapeHtml(r.name)}</b>`,
        ...names.map((c) => (c === r.name ? '—' : pct(r.winRates?.headToHead?.[c]?.[key]))),
      ]),
      'win-rates',
    );
  return section(
    'win-rates',
    'Win rates',
    '<p>Fraction of prompts on which a policy’s response scores higher than the other’s, ties counting ½ ' +
      '(same prompts, one sample each).</p>' +
      vs +
      (hasH2h
        ? `<h3>Head to head</h3>${matrix('proxy')}${matrix('judge')}`
        : '<p class="missing">No head-to-head rates in eval/*.json (run the frontier/eval stage over all policies).</p>'),
  );
}

function numberOf(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function trainingSection(data: RunData, order: string[]): string {
  if (data.training.length === 0) {
    return section(
      'training',
      'Training curves',
      '<p class="missing">No train/&lt;algo&gt;/metrics.jsonl.</p>',
    );
  }
  const algos = orderAlgos(
    data.training.map((t) => t.algo),
    order,
  );
  const chart = (id: string, title: string, key: string): string => {
    const series = algos.map((algo): ChartSeries => {
      const rows = data.training.find((t) => t.algo === algo)!.rows;
      const pts = rows
        .map((r, i) => ({ x: numberOf(r['train/step']) ?? i + 1, y: numberOf(r[key]) }))
        .filter((p): p is { x: number; y: number } => p.y !== undefined);
      const few = pts.length <= 30;
      return {
        name: algo,
        color: algoColor(algo, order),
        points: pts.map((p) => ({ ...p, label: `${algo} step ${p.x}: ${fmt(p.y)}` })),
        line: pts,
        markers: few,
      };
    });
    return lineChart({ id, title, xLabel: 'optimizer step', yLabel: key, series });
  };
  const hasEval = data.training.some((t) =>
    t.rows.some((r) => numberOf(r['eval/reward/mean']) !== undefined),
  );
  return section(
    'training',
    'Training curves',
    `<div class="charts">${chart('train-reward', 'Reward during training (reward/mean)', 'reward/mean')}` +
      `${chart('train-kl', 'KL to the reference during training (objective/kl)', 'objective/kl')}` +
      (hasEval
        ? chart('train-eval-reward', 'Held-out reward during training (eval/reward/mean)', 'eval/reward/mean')
        : '') +
      '</div>',
  );
}

/** `[dotted.key, value]` of a JSON object, nested objects flattened (three levels at most). */
function flatten(obj: Record<string, unknown>, prefix = '', depth = 0): [string, unknown][] {
  return Object.entries(obj).flatMap(([k, v]) =>
    v !== null && typeof v === 'object' && !Array.isArray(v) && depth < 2
      ? flatten(v as Record<string, unknown>, `${prefix}${k}.`, depth + 1)
      : [[prefix + k, v] as [string, unknown]],
  );
}

function valueText(v: unknown): string {
  if (typeof v === 'number') return fmt(v, 4);
  if (typeof v === 'string' || typeof v === 'boolean') return escapeHtml(String(v));
  if (Array.isArray(v)) return v.length <= 8 ? escapeHtml(JSON.stringify(v)) : `[${v.length} values]`;
  return escapeHtml(JSON.stringify(v) ?? '–');
}

function rewardSection(data: RunData): string {
  const parts: string[] = [];
  if (data.rewardEval) {
    const entries = flatten(data.rewardEval);
    const acc = entries
      .filter(([k, v]) => /accuracy/i.test(k) && typeof v === 'number' && v >= 0 && v <= 1)
      .map(([k, v]) => ({ label: k, value: v as number, color: /human/i.test(k) ? '#2ca02c' : '#4c78a8' }));
    parts.push(
      '<p>The reward model’s agreement with held-out labels: with preference pairs labelled like the training ' +
        'pairs, and with the real human labels of held-out review sentences (chance = 50 %).</p>',
    );
    if (acc.length > 0) {
      parts.push(
        barChart({
          id: 'rm-accuracy',
          title: 'Reward-model accuracy',
          bars: acc,
          reference: { value: 0.5, label: 'chance' },
          format: pct,
        }),
      );
    }
    parts.push(
      table(
        ['metric', 'value'],
        entries.map(([k, v]) => [escapeHtml(k), valueText(v)]),
      ),
    );
  } else {
    parts.push('<p class="missing">No reward/eval.json.</p>');
  }
  if (data.labelStats) {
    parts.push(
      '<h3>Preference labels</h3>',
      table(
        ['statistic', 'value'],
        flatten(data.labelStats).map(([k, v]) => [escapeHtml(k), valueText(v)]),
      ),
    );
  }
  return section('reward-model', 'Reward model', parts.join(''));
}

function samplesSection(data: RunData, order: string[], maxSamples: number): string {
  // One column per optimizer's main run (name = algo) and SFT; sweep runs (other names) only when a run
  // has no main run, so the table stays readable.
  const withSamples = data.evals.filter((r) => data.samples.has(r.name));
  const main = withSamples.filter((r) => r.name === r.algo);
  const shown = main.length > 0 ? main : withSamples;
  const names = orderAlgos(
    shown.map((r) => r.algo),
    order,
  ).flatMap((algo) => shown.filter((r) => r.algo === algo).map((r) => r.name));
  if (names.length === 0)
    return section('samples', 'Sample responses', '<p class="missing">No samples/*.jsonl.</p>');
  const first = data.samples.get(names[0]!)!;
  const rows = first.slice(0, maxSamples).map((s, i) => {
    const cells = names.map((n) => {
      const rec: SampleRecord | undefined = data.samples.get(n)![i];
      if (rec === undefined || rec.prompt !== s.prompt) return '<span class="missing">–</span>';
      return (
        `<div class="response"><span class="prompt-echo">${escapeHtml(rec.prompt)}</span>${escapeHtml(rec.response)}</div>` +
        `<div class="scores">proxy ${fmt(rec.proxy, 2)} · gold ${fmt(rec.gold, 2)} · judge ${fmt(rec.judge, 2)}${typeof rec.kl === 'number' ? ` · KL ${fmt(rec.kl, 2)}` : ''}</div>`
      );
    });
    return [`<b>${escapeHtml(s.prompt)}</b>`, ...cells];
  });
  return section(
    'samples',
    'Sample responses',
    `<p>The first ${rows.length} held-out prompts; each policy’s response (prompt in grey) and its scores.</p>` +
      table(['prompt', ...names.map(escapeHtml)], rows, 'samples'),
  );
}

function stagesSection(data: RunData): string {
  if (!data.stages) return section('stages', 'Stage timings', '<p class="missing">No stages.json.</p>');
  // A resumed stage's time includes its interrupted attempts (`previousSeconds`).
  const time = (s: StageRecord): number | undefined =>
    s.seconds === undefined ? undefined : s.seconds + (s.previousSeconds ?? 0);
  const total = data.stages.reduce((a, s) => a + (time(s) ?? 0), 0);
  // Train stages that ran concurrently overlap: the total is then the wall clock, their sum given beside it.
  const concurrent = data.stages.some((s) => (s.parallel ?? 1) > 1);
  const rows = data.stages.map((s) => [
    escapeHtml(s.stage),
    escapeHtml(s.status) +
      ((s.parallel ?? 1) > 1 ? `, ${s.parallel} at a time` : '') +
      (s.error ? `: <span class="missing">${escapeHtml(s.error)}</span>` : ''),
    duration(time(s)),
    escapeHtml(s.startedAt ?? '–'),
  ]);
  rows.push(
    concurrent
      ? [
          '<b>total</b>',
          `wall clock (the stages’ times add up to ${duration(total)})`,
          `<b>${duration(wallClockSeconds(data.stages))}</b>`,
          '',
        ]
      : ['<b>total</b>', '', `<b>${duration(total)}</b>`, ''],
  );
  return section('stages', 'Stage timings', table(['stage', 'status', 'time', 'started'], rows));
}

function configSection(data: RunData): string {
  if (!data.config) return '';
  return section(
    'config',
    'Effective config',
    `<details><summary>config.json</summary><pre>${escapeHtml(JSON.stringify(data.config, null, 2))}</pre></details>`,
  );
}

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0;color:#222;background:#f6f7f9}
header{background:#1f2937;color:#fff;padding:18px 28px}header h1{margin:0 0 4px;font-size:22px}header p{margin:0;color:#cbd5e1}
nav{padding:8px 28px;background:#e5e7eb;font-size:13px}nav a{margin-right:14px;color:#1f2937}
main{padding:8px 28px 40px;max-width:1400px}
section{background:#fff;border:1px solid #e5e7eb;border-radius:6px;padding:6px 18px 14px;margin:16px 0}
h2{font-size:18px;margin:10px 0}h3{font-size:15px;margin:14px 0 6px}
.charts{display:flex;flex-wrap:wrap;gap:12px}.chart{border:1px solid #e5e7eb;border-radius:4px;max-width:100%;height:auto}
.chart-title{font-size:14px;font-weight:600;fill:#222}.tick{font-size:11px;fill:#555}.axis-label{font-size:12px;fill:#333}
.legend{font-size:12px;fill:#333}.grid{stroke:#eee}.frame{fill:none;stroke:#999}.axis{stroke:#999}
.reference{stroke:#888;stroke-dasharray:4 3}.no-data{font-size:14px;fill:#999}
.table-wrap{overflow-x:auto}table{border-collapse:collapse;margin:6px 0 10px;font-size:13px}
th,td{border:1px solid #e5e7eb;padding:4px 8px;text-align:right;vertical-align:top}th{background:#f3f4f6}
td:first-child,th:first-child{text-align:left}.std{color:#888;font-size:11px}
table.samples td{text-align:left;min-width:180px;max-width:320px}.response{white-space:pre-wrap}
.prompt-echo{color:#999}.scores{color:#666;font-size:11px;margin-top:3px}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:6px}
.missing{color:#9a3412}pre{font-size:12px;background:#f9fafb;padding:8px;overflow-x:auto}
`;

/**
 * Renders the report of loaded run data as one HTML document (pure: no I/O).
 * @returns the HTML text.
 */
export function renderReport(data: RunData, options: ReportOptions = {}): string {
  const algos = expectedAlgos(data, options);
  const points = data.evals.length > 0 ? frontierPoints(data.evals) : (data.frontierFile ?? []);
  const order = orderAlgos([...points.map((p) => p.algo), ...data.evals.map((r) => r.algo), ...algos], algos);
  const title = options.title ?? 'relign run report';
  const words = taskWords(data);
  const sections = [
    summarySection(data.evals, order, words),
    missingSection(data, algos),
    frontierSection(
      points,
      orderAlgos(
        points.map((p) => p.algo),
        algos,
      ),
      words,
    ),
    evalTableSection(data.evals, order),
    winRateSection(data.evals, order),
    trainingSection(data, order),
    rewardSection(data),
    samplesSection(data, order, options.maxSamples ?? 8),
    stagesSection(data),
    configSection(data),
  ].filter(Boolean);
  const nav = [...sections.join('').matchAll(/<section id="([^"]+)"><h2>([^<]*)<\/h2>/g)]
    .map((m) => `<a href="#${m[1]}">${m[2]}</a>`)
    .join('');
  return (
    '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">' +
    '<meta name="viewport" content="width=device-width, initial-scale=1">' +
    `<title>${escapeHtml(title)}</title><style>${CSS}</style></head><body>` +
    `<header><h1>${escapeHtml(title)}</h1><p>Run directory <code>${escapeHtml(data.runDir)}</code> · task: ${escapeHtml(words.task)} · ` +
    `optimizers: ${escapeHtml(algos.join(', '))}</p></header>` +
    `<nav>${nav}</nav><main>${sections.join('\n')}</main></body></html>\n`
  );
}

/**
 * Writes the report of a run directory to `<runDir>/report/report.html` (or `options.outPath`):
 * one self-contained HTML file. Missing parts of the run are named in the report, not fatal.
 *
 * @returns the path of the written file.
 */
export async function writeReport(runDir: string, options: ReportOptions = {}): Promise<string> {
  const data = await loadRunData(runDir);
  const html = renderReport(data, options);
  const out = options.outPath ?? join(runDir, 'report', 'report.html');
  await mkdir(join(out, '..'), { recursive: true });
  await writeFileAtomic(out, html);
  return out;
}
