/**
 * `relign report`: the self-contained HTML report of a run (`writeReport` of `src/report`):
 * `<runDir>/report/report.html`.
 */
import { writeReport } from '../report/index.js';
import type { StageContext } from '../context.js';

export async function reportStage(ctx: StageContext): Promise<string> {
  const path = await writeReport(ctx.run.root, { title: ctx.cfg.report.title, algos: ctx.cfg.train.algos });
  ctx.progress.line(`  report: ${path}`);
  return path;
}
