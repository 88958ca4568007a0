/**
 * `relign label`: preference pairs for the reward model. The SFT model samples two responses for each
 * labelling prompt (first words of training sentences); the gold labeler (VADER compound of prompt +
 * response) labels each pair by Bradley–Terry sampling, `P(A ≻ B) = σ((s_A − s_B)/τ)` (`labelPairs` of
 * @relign/reward-model): an imperfect, noisy "human". Task arithmetic labels with its checkable reward instead
 * (reading each prompt's answer from its record). Writes `labels/pairs.jsonl` (TRL format
 * `{prompt, chosen, rejected}`) and `labels/stats.json`.
 */
import { join } from 'node:path';
import { labelPairs } from '@relign/reward-model';
import { generate, tokenizerStopOptions } from '@relign/rollout';
import { writeFileAtomic } from '@relign/tensor';
import { REVIEW_DATA_ATTRIBUTION } from '@relign/lm';
import { taskLabelers } from '../eval/index.js';
import { promptRecords } from '../task/data.js';
import { checkAborted, type StageContext } from '../context.js';
import { writeJson } from '../run-dir.js';
import { loadSft, round, taskData } from './shared.js';

/** Prompts per generation call. */
const CHUNK = 64;

export async function labelStage(ctx: StageContext): Promise<void> {
  const { cfg, run } = ctx;
  const data = await taskData(cfg);
  const { model, tokenizer } = await loadSft(run, false);
  try {
    const prompts = data.labelPrompts;
    const a: string[] = [];
    const b: string[] = [];
    const task = ctx.progress.task('label: sampling pairs', prompts.length);
    for (let start = 0; start < prompts.length; start += CHUNK) {
      checkAborted(ctx, 'label');
      const chunk = prompts.slice(start, start + CHUNK);
      const batch = await generate(
        model,
        chunk.map((p) => tokenizer.encode(p)),
        {
          maxNewTokens: cfg.label.maxNewTokens,
          temperature: cfg.label.temperature,
          ...tokenizerStopOptions(tokenizer),
          responsesPerPrompt: 2,
          seed: `${cfg.seed}/label/${start}`,
        },
      );
      const Tr = batch.responseWidth;
      for (let r = 0; r < batch.batchSize; r++) {
        const len = batch.responseLengths[r]! - (batch.endedWithEos[r] ? 1 : 0);
        const text = tokenizer.decode(batch.responseTokens.subarray(r * Tr, r * Tr + len), {
          skipSpecial: true,
        });
        (r % 2 === 0 ? a : b).push(text);
      }
      task.update(Math.min(prompts.length, start + CHUNK));
    }
    // Task arithmetic labels with its checkable reward, which reads each prompt's answer from its record.
    const gold = taskLabelers(cfg).labeler;
    const records = data.answers ? promptRecords(data, prompts) : undefined;
    // Pairs the labeler is (nearly) indifferent about are left out: their Bradley-Terry label would be a coin
    // flip (two neutral responses score 0 each; two right or two wrong answers), i.e. pure label noise.
    const sa = await gold.score(prompts, a, records ? { records } : undefined);
    const sb = await gold.score(prompts, b, records ? { records } : undefined);
    const keep = prompts.map((_, i) => i).filter((i) => Math.abs(sa[i]! - sb[i]!) >= cfg.label.minGap);
    const indifferent = prompts.length - keep.length;
    const labelled = await labelPairs(
      keep.map((i) => prompts[i]!),
      keep.map((i) => a[i]!),
      keep.map((i) => b[i]!),
      gold,
      {
        temperature: cfg.label.btTemperature,
        seed: `${cfg.seed}/bradley-terry`,
        ...(records
          ? {
              scoreOptionsA: { records: keep.map((i) => records[i]!) },
              scoreOptionsB: { records: keep.map((i) => records[i]!) },
            }
          : {}),
      },
    );
    // How often the sampled label agrees with the labeler's own ranking (1 at τ = 0): the label noise.
    let agree = 0;
    let decided = 0;
    labelled.rows.forEach((row, i) => {
      const d = labelled.scoresA[row]! - labelled.scoresB[row]!;
      if (d === 0) return;
      decided++;
      const aChosen = labelled.pairs[i]!.chosen === a[keep[row]!];
      if (d > 0 === aChosen) agree++;
    });
    const lines = labelled.pairs.map((p) =>
      JSON.stringify({ prompt: p.prompt, chosen: p.chosen, rejected: p.rejected }),
    );
    run.ensure('labels');
    await writeFileAtomic(run.pairsPath, lines.map((l) => l + '\n').join(''));
    const all = [...sa, ...sb];
    const stats = {
      prompts: prompts.length,
      pairs: labelled.pairs.length,
      indifferent,
      identical: labelled.identical,
      ties: labelled.ties,
      minGap: cfg.label.minGap,
      labeler: gold.name,
      btTemperature: cfg.label.btTemperature,
      agreementWithLabeler: decided > 0 ? round(agree / decided) : null,
      meanGoldScore: round(all.reduce((s, x) => s + x, 0) / Math.max(1, all.length)),
      sampling: { temperature: cfg.label.temperature, maxNewTokens: cfg.label.maxNewTokens },
      ...(cfg.task === 'reviews' ? { data: REVIEW_DATA_ATTRIBUTION } : {}),
    };
    await writeJson(join(run.labelsDir, 'stats.json'), stats);
    task.finish(
      `${stats.pairs} pairs (${indifferent} indifferent and ${stats.identical} identical left out), labels agree with ${gold.name}'s ranking ` +
        `${stats.agreementWithLabeler !== null ? (100 * stats.agreementWithLabeler).toFixed(0) : '-'}%`,
    );
    if (labelled.pairs.length === 0) {
      throw new Error(
        'label: no pair left (every pair identical, tied or within label.minGap); raise label.prompts, label.temperature ' +
          'or label.maxNewTokens, or lower label.minGap.',
      );
    }
  } finally {
    model.dispose();
  }
}
