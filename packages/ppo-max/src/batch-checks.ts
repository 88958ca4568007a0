/**
 * Checks of what PPO-max is handed: the scored rollout of `update` / `evaluate` and the PPO-ptx examples.
 * Each error names the field and how to produce the right input.
 */
import type { TokenizedExample } from '@relign/lm';
import { validateRolloutBatch, type RolloutMinibatch } from '@relign/rollout';

/** The plugin's name, the prefix of its messages and metrics. */
export const NAME = 'ppo-max';

/**
 * A rollout PPO-max can train on: a valid batch of the policy's vocabulary with one finite raw score per
 * response and the reference's per-token log-probs (the KL penalty, docs/algorithms.md §2.4).
 */
export function checkPpoBatch(batch: RolloutMinibatch, fn: string, vocabSize: number): void {
  if (batch === null || typeof batch !== 'object')
    throw new TypeError(`${fn}: batch must be a RolloutMinibatch.`);
  validateRolloutBatch(batch, fn, vocabSize);
  const { batchSize: B, responseWidth: Tr } = batch;
  const r = batch.rewards as unknown;
  if (!(r instanceof Float64Array || r instanceof Float32Array) || r.length !== B) {
    throw new Error(`${fn}: batch.rewards must be a Float64Array [B] = [${B}] (one raw score per response).`);
  }
  for (let b = 0; b < B; b++) {
    if (!Number.isFinite(batch.rewards[b]!))
      throw new Error(`${fn}: batch.rewards[${b}] = ${batch.rewards[b]} is not finite.`);
  }
  if (!(batch.refLogprobs instanceof Float32Array) || batch.refLogprobs.length !== B * Tr) {
    throw new Error(
      `${fn}: batch.refLogprobs must be a Float32Array [B, Tr] = [${B}, ${Tr}]: PPO-max penalises the KL to the ` +
        'reference at every token (docs/algorithms.md §2.4); collect rollouts with referenceLogprobs: true.',
    );
  }
}

/**
 * PPO-ptx examples (docs/algorithms.md §2.7) that fit the policy: present when `ptxCoef > 0`, each
 * `{ ids: Int32Array, length, promptLength }` within `n_positions` and the vocabulary, and a valid padding id.
 */
export function checkPtxExamples(
  examples: readonly TokenizedExample[],
  {
    ptxCoef,
    padId,
    vocabSize: V,
    nPositions: P,
  }: { ptxCoef: number; padId: number; vocabSize: number; nPositions: number },
): void {
  if (!Array.isArray(examples))
    throw new TypeError(`${NAME}: ptxExamples must be an array of tokenized examples.`);
  if (ptxCoef > 0 && examples.length === 0) {
    throw new Error(
      `${NAME}: ptxCoef = ${ptxCoef} (PPO-ptx) needs SFT examples (ptxExamples): the Trainer option ` +
        'resources: { sftExamples } (or createPpoMaxPlugin({ ptxExamples })) with tokenized examples of @relign/lm, ' +
        'or set ptxCoef: 0.',
    );
  }
  if (!Number.isInteger(padId) || padId < 0 || padId >= V) {
    throw new Error(`${NAME}: ptxPadId must be a token id in [0, ${V}), got ${padId}.`);
  }
  examples.forEach((ex, i) => {
    if (!(ex?.ids instanceof Int32Array) || ex.ids.length !== ex.length || ex.length < 1) {
      throw new Error(
        `${NAME}: ptxExamples[${i}] must be { ids: Int32Array, length, promptLength } with length = ids.length >= 1.`,
      );
    }
    if (ex.length > P)
      throw new Error(
        `${NAME}: ptxExamples[${i}] has ${ex.length} tokens, more than the policy's n_positions ${P}.`,
      );
    if (!Number.isInteger(ex.promptLength) || ex.promptLength < 0 || ex.promptLength > ex.length) {
      throw new Error(
        `${NAME}: ptxExamples[${i}].promptLength must be in [0, ${ex.length}], got ${ex.promptLength}.`,
      );
    }
    for (const id of ex.ids) {
      if (id < 0 || id >= V)
        throw new Error(
          `${NAME}: ptxExamples[${i}] has token id ${id} outside the policy's vocabulary [0, ${V}).`,
        );
    }
  });
}
