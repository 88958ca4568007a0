/**
 * `relign reward`: the proxy reward model. A scalar head on a copy of the SFT model (PPO-max's
 * initialisation) trained with the Bradley–Terry loss on `labels/pairs.jsonl`, then checked against the
 * real human labels of the held-out review sentences (which neither the labeler nor the model saw as
 * pairs). Writes the reward-model directory `<runDir>/reward/` (+ tokenizer), `metrics.jsonl` and
 * `eval.json`.
 */
import { join } from 'node:path';
import { saveTokenizer } from '@relign/lm';
import {
  readPreferenceJsonl,
  RewardModel,
  trainRewardModel,
  type RewardFunction,
} from '@relign/reward-model';
import { taskLabelers } from '../eval/index.js';
import { InterruptedError, type StageContext } from '../context.js';
import { MetricsFile } from '../metrics-file.js';
import { writeJson } from '../run-dir.js';
import { promptRecords, type SplitSentence, type TaskData } from '../task/data.js';
import { loadSft, requireFile, round, taskData } from './shared.js';

/**
 * Agreement of scores with binary human labels:
 * - `pairAccuracy`: over every (positive, negative) pair of sentences, the fraction where the positive one
 *   scores higher (ties ½) — the ranking accuracy (ROC AUC), independent of the score's scale and offset;
 * - `accuracy`: labels predicted by thresholding at `threshold` (a score equal to it counts ½).
 */
export function humanAgreement(
  scores: ArrayLike<number>,
  labels: ArrayLike<0 | 1>,
  threshold: number,
): { pairAccuracy: number; accuracy: number } {
  const pos: number[] = [];
  const neg: number[] = [];
  let correct = 0;
  for (let i = 0; i < labels.length; i++) {
    const s = scores[i]!;
    (labels[i] === 1 ? pos : neg).push(s);
    if (s === threshold) correct += 0.5;
    else if (s > threshold === (labels[i] === 1)) correct += 1;
  }
  // Rank-sum form of the pairwise count: O(n log n) instead of |pos|·|neg|.
  const all = [...pos.map((s) => ({ s, p: 1 })), ...neg.map((s) => ({ s, p: 0 }))].sort((x, y) => x.s - y.s);
  let wins = 0;
  let negBelow = 0;
  for (let i = 0; i < all.length;) {
    let j = i;
    let posTied = 0;
    let negTied = 0;
    while (j < all.length && all[j]!.s === all[i]!.s) {
      if (all[j]!.p) posTied++;
      else negTied++;
      j++;
    }
    wins += posTied * (negBelow + 0.5 * negTied);
    negBelow += negTied;
    i = j;
  }
  return {
    pairAccuracy: pos.length > 0 && neg.length > 0 ? wins / (pos.length * neg.length) : Number.NaN,
    accuracy: labels.length > 0 ? correct / labels.length : Number.NaN,
  };
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function scoreSentences(
  fn: RewardFunction,
  sentences: readonly SplitSentence[],
  data?: TaskData,
): Promise<Float64Array | Float32Array> {
  const prompts = sentences.map((s) => s.prompt);
  // Task arithmetic's labelers read each prompt's answer from its record.
  const records = data?.answers ? promptRecords(data, prompts) : undefined;
  return fn.score(
    prompts,
    sentences.map((s) => s.completion),
    records ? { records } : undefined,
  );
}

export async function rewardStage(ctx: StageContext): Promise<void> {
  const { cfg, run } = ctx;
  requireFile(run.pairsPath, 'label');
  const { model, tokenizer } = await loadSft(run, true);
  // The tokenizer renders conversational pair files (message lists) with its chat template.
  const { pairs } = await readPreferenceJsonl(run.pairsPath, { tokenizer }).catch((e: unknown) => {
    model.dispose();
    throw e;
  });
  const rm = RewardModel.fromBackbone(model, { tokenizer, seed: `${cfg.seed}/reward` });
  try {
    const r = cfg.reward;
    const checkpointDir = join(run.rewardDir, 'checkpoints');
    const metrics = new MetricsFile(join(run.rewardDir, 'metrics.jsonl'), ctx.resume);
    ctx.progress.line(
      `  ${pairs.length} preference pairs; reward model on the SFT backbone (${model.numParameters()} parameters + head)`,
    );
    const task = ctx.progress.task('reward', r.steps);
    const result = await trainRewardModel(rm, pairs, {
      tokenizer,
      batchSize: r.batchSize,
      lr: r.lr,
      warmupSteps: Math.min(r.warmupSteps, r.steps),
      maxSteps: r.steps,
      evalFraction: r.evalFraction,
      evalEvery: Math.max(1, Math.floor(r.steps / 5)),
      seed: `${cfg.seed}/reward`,
      checkpointDir,
      checkpointEvery: r.checkpointEvery,
      resume: ctx.resume,
      signal: ctx.signal,
      onMetrics: (m) => {
        metrics.write({ ...m });
        task.update(m.step, {
          loss: m['train/loss'],
          acc: m['train/accuracy'],
          ...(m['eval/accuracy'] !== undefined ? { 'held-out acc': m['eval/accuracy'] } : {}),
        });
      },
    });
    if (result.interrupted) throw new InterruptedError('reward', `at step ${result.steps}`);

    // The check against people: held-out review sentences with their human labels.
    const data = await taskData(cfg);
    // Sentences longer than the model's context cannot be scored whole: left out (counted in the record).
    const fits = (x: SplitSentence) =>
      tokenizer.encode(x.prompt).length + tokenizer.encode(x.completion).length + 1 <=
      model.dims.maxPositions;
    const held = data.heldOut.filter(fits);
    const labels = held.map((s) => s.label);
    const rmScores = await scoreSentences(rm, held);
    const rmAgree = humanAgreement(rmScores, labels, median(Array.from(rmScores)));
    const { gold, judge } = taskLabelers(cfg);
    // The reviews' labelers score in [-1, 1] (threshold 0); arithmetic's in {0, 1} (threshold ½).
    const cut = cfg.task === 'arithmetic' ? 0.5 : 0;
    const goldAgree = humanAgreement(await scoreSentences(gold, held, data), labels, cut);
    const judgeAgree = humanAgreement(await scoreSentences(judge, held, data), labels, cut);
    const evalRecord = {
      heldOutAccuracy: result.eval ? round(result.eval.accuracy) : null,
      heldOutMargin: result.eval ? round(result.eval.meanMargin) : null,
      heldOutLoss: result.eval ? round(result.eval.loss) : null,
      heldOutPairs: result.numEval,
      trainPairs: result.numTrain,
      trainAccuracy: round(result.trainAccuracy),
      trainLoss: round(result.trainLoss),
      humanAccuracy: round(rmAgree.accuracy),
      humanPairAccuracy: round(rmAgree.pairAccuracy),
      humanSentences: held.length,
      humanSentencesTooLong: data.heldOut.length - held.length,
      humanThreshold: 'median reward-model score (the held-out labels are balanced 1:1)',
      ...(cfg.task === 'arithmetic'
        ? {
            humanLabels:
              'task arithmetic: each held-out problem with its right answer (1) and a near miss (0)',
          }
        : {}),
      labelers: {
        gold: {
          name: gold.name,
          humanAccuracy: round(goldAgree.accuracy),
          humanPairAccuracy: round(goldAgree.pairAccuracy),
        },
        judge: {
          name: judge.name,
          humanAccuracy: round(judgeAgree.accuracy),
          humanPairAccuracy: round(judgeAgree.pairAccuracy),
        },
      },
      steps: result.steps,
      seconds: round(result.seconds, 2),
    };
    task.finish(
      `held-out pair accuracy ${evalRecord.heldOutAccuracy ?? '-'}, human-label accuracy ${evalRecord.humanAccuracy} ` +
        `(ranking ${evalRecord.humanPairAccuracy}; ${gold.name} itself ${evalRecord.labelers.gold.humanAccuracy})`,
    );
    await rm.save(run.rewardDir);
    await saveTokenizer(tokenizer, run.rewardDir);
    await writeJson(join(run.rewardDir, 'eval.json'), evalRecord);
    await run.removeOwned('reward', 'checkpoints');
  } finally {
    rm.dispose();
  }
}
