/**
 * The run report of the reference app (issue 9): one self-contained HTML file with inline SVG charts, and
 * headless-Chromium helpers to check it and to render the README's frontier image.
 */
export {
  writeReport,
  renderReport,
  expectedAlgos,
  algoColor,
  DEFAULT_ALGOS,
  type ReportOptions,
} from './report.js';
export { loadRunData, type RunData, type StageRecord, type TrainingCurve } from './run-data.js';
export {
  lineChart,
  barChart,
  niceTicks,
  tickLabel,
  type LineChartSpec,
  type BarChartSpec,
  type ChartSeries,
  type ChartPoint,
} from './svg-chart.js';
export { escapeHtml, fmt, pct, duration } from './html.js';
export {
  findChromium,
  inspectHtml,
  renderFrontierPng,
  CHROMIUM_FLAGS,
  type BrowserOptions,
  type ScreenshotOptions,
  type PageReport,
} from './browser.js';
