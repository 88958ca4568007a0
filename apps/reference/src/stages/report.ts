/**
 * `relign report`: the self-contained HTML report of a run (`writeReport` of `src/report`):
 * `<runDir>/report/report.html`.
 */
import type { StageContext } from '../context.js';

export async function reportStage(ctx: StageContext): Promise<string> {
  // TEMP until src/report lands.
  const spec = '../report/index.js';
  const { writeReport } = (await import(/* @vite-ignore */ spec)) as { writeReport: (dir: string) => Promise<string> };
  const path = await writeReport(ctx.run.root);
  ctx.progress.line(`  report: ${path}`);
  return path;
}
