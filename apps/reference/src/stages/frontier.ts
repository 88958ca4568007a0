/**
 * `relign frontier`: the KL–reward frontier (docs/algorithms.md §1.11, the P3O paper's main plot). With
 * `frontier.klCoefs` and/or `frontier.seeds` it first trains and evaluates an extra run per optimizer,
 * coefficient and seed (`train/<algo>-kl<β>-s<seed>/`; the main run's own coefficient and seed are not
 * repeated); then it collects one point per evaluated checkpoint from `eval/*.json` into
 * `frontier/frontier.json` (`computeFrontier`).
 */
import { computeFrontier, updateHeadToHead, type Frontier } from '../eval/index.js';
import { checkAborted, type StageContext } from '../context.js';
import { evalTargets, evaluateTargets } from './eval.js';
import { sweepRunName, trainRunDone, trainStage } from './train.js';

/** The extra runs of the sweep: every (algo, β, seed) of the grid except the main runs' own. */
export function sweepRuns(ctx: StageContext): { algo: string; klCoef: number; seed: number; name: string }[] {
  const { cfg } = ctx;
  const f = cfg.frontier;
  if (f.klCoefs.length === 0 && f.seeds.length === 0) return [];
  const coefs = f.klCoefs.length > 0 ? f.klCoefs : [cfg.train.klCoef];
  const seeds = f.seeds.length > 0 ? f.seeds : [cfg.seed];
  const out: { algo: string; klCoef: number; seed: number; name: string }[] = [];
  for (const algo of cfg.train.algos) {
    for (const klCoef of coefs) {
      for (const seed of seeds) {
        if (klCoef === cfg.train.klCoef && seed === cfg.seed) continue;
        out.push({ algo, klCoef, seed, name: sweepRunName(algo, klCoef, seed) });
      }
    }
  }
  return out;
}

export async function frontierStage(ctx: StageContext): Promise<Frontier> {
  const sweep = sweepRuns(ctx);
  if (sweep.length > 0) {
    ctx.progress.line(`  sweep: ${sweep.length} extra runs (${sweep.map((s) => s.name).join(', ')})`);
    for (const s of sweep) {
      checkAborted(ctx, 'frontier');
      if (ctx.resume && trainRunDone(ctx, s.name)) continue;
      await trainStage(ctx, { algo: s.algo, name: s.name, klCoef: s.klCoef, seed: s.seed });
    }
    await evaluateTargets(
      ctx,
      evalTargets(
        ctx,
        sweep.map((s) => s.name),
      ),
    );
    await updateHeadToHead(ctx.run.root);
  }
  const frontier = await computeFrontier(ctx.run.root);
  const byAlgo = new Map<string, number>();
  for (const p of frontier.points) byAlgo.set(p.algo, (byAlgo.get(p.algo) ?? 0) + 1);
  ctx.progress.line(
    `  frontier: ${frontier.points.length} points (${[...byAlgo].map(([a, n]) => `${a} ${n}`).join(', ')}) -> ${ctx.run.frontierPath}`,
  );
  return frontier;
}
