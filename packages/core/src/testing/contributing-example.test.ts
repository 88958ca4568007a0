// The minimal plugin of CONTRIBUTING.md, verbatim between the markers, run through the conformance suite so the
// guide's example stays correct.
import { beforeAll, describe, it } from 'vitest';
import { TEST_BACKENDS, useBackend } from '@relign/tensor/testing';
import { describeConformance } from './index.js';
// --- CONTRIBUTING code starts ---
import * as tf from '@tensorflow/tfjs-core';
import { AdamW } from '@relign/tensor';
import { computeLogprobs, type RolloutMinibatch } from '@relign/rollout';
import type { CausalLM } from '@relign/lm';
import {
  configSchema,
  definePlugin,
  integerField,
  numberField,
  type AlgorithmInstance,
  type InferConfig,
  type Metrics,
  type PluginState,
} from '../index.js'; // '@relign/core'

/** The config, declared once: validated at run time (unknown keys, types, ranges) and its type inferred. */
const schema = configSchema({
  lr: numberField({ default: 1e-3, min: 0, exclusiveMin: true, description: 'AdamW learning rate' }),
  epochs: integerField({ default: 1, min: 1, description: 'passes over each rollout' }),
  clipRange: numberField({ default: 0.2, min: 0, max: 1, exclusiveMin: true, description: 'ratio clip ε' }),
});
type Config = InferConfig<typeof schema>;

class Reinforce implements AlgorithmInstance {
  private readonly optimizer: AdamW;

  constructor(
    private readonly policy: CausalLM,
    private readonly config: Config,
  ) {
    this.optimizer = new AdamW({ lr: config.lr, weightDecay: 0 });
  }

  /** Leave-one-out advantages (host data: no gradient flows through them) and S_old per response. */
  private data(batch: RolloutMinibatch) {
    const { batchSize: B, responsesPerPrompt: G, responseWidth: Tr } = batch;
    const oldSums = new Float32Array(B);
    for (let b = 0; b < B; b++)
      for (let t = 0; t < batch.responseLengths[b]!; t++) oldSums[b]! += batch.logprobs[b * Tr + t]!;
    const adv = new Float32Array(B);
    for (let g = 0; g < B; g += G) {
      let sum = 0;
      for (let j = 0; j < G; j++) sum += batch.rewards[g + j]!;
      for (let j = 0; j < G; j++)
        adv[g + j] = batch.rewards[g + j]! - (sum - batch.rewards[g + j]!) / (G - 1);
    }
    return { adv: tf.tensor1d(adv), oldSums: tf.tensor1d(oldSums) };
  }

  /** Clipped sequence-level policy-gradient loss; differentiable w.r.t. the policy. */
  private loss(batch: RolloutMinibatch, adv: tf.Tensor1D, oldSums: tf.Tensor1D) {
    const eps = this.config.clipRange;
    const ratio = tf.exp(tf.sub(tf.sum(computeLogprobs(this.policy, batch), 1), oldSums));
    const loss = tf.mean(
      tf.maximum(tf.mul(tf.neg(adv), ratio), tf.mul(tf.neg(adv), tf.clipByValue(ratio, 1 - eps, 1 + eps))),
    ) as tf.Scalar;
    return { loss, ratio };
  }

  async update(batch: RolloutMinibatch): Promise<Metrics> {
    const { adv, oldSums } = this.data(batch);
    const trainable = this.policy.trainableVariables();
    let skipped = 0;
    let last = 0;
    for (let epoch = 0; epoch < this.config.epochs; epoch++) {
      const { value, grads } = tf.variableGrads(
        () => this.loss(batch, adv, oldSums).loss,
        [...trainable.values()],
      );
      const loss = (await value.data())[0]!;
      const byName = Object.fromEntries([...trainable].map(([name, v]) => [name, grads[v.name]!]));
      // Never write NaN or exploded weights: the guarded step skips a non-finite loss or gradient and an
      // update beyond its bounds, changing nothing.
      if ((await this.optimizer.guardedStep(byName, trainable, { maxGradNorm: 1, loss })).skipped) {
        skipped++;
      } else {
        last = loss;
      }
      tf.dispose([value, ...Object.values(grads)]);
    }
    tf.dispose([adv, oldSums]);
    return { 'loss/policy': last, 'train/lr': this.config.lr, 'train/skipped_steps': skipped };
  }

  async evaluate(batch: RolloutMinibatch): Promise<Metrics> {
    const { adv, oldSums } = this.data(batch);
    const { loss, ratio } = tf.tidy(() => this.loss(batch, adv, oldSums));
    const r = Array.from(await ratio.data());
    const metrics = {
      'loss/policy': (await loss.data())[0]!,
      'policy/ratio_mean': r.reduce((a, v) => a + v, 0) / r.length,
      'policy/ratio_min': Math.min(...r),
      'policy/ratio_max': Math.max(...r),
    };
    tf.dispose([adv, oldSums, loss, ratio]);
    return metrics;
  }

  state(): PluginState {
    const { step, tensors } = this.optimizer.state();
    return { json: { step }, tensors };
  }

  load(state: PluginState): void {
    this.optimizer.load({ step: state.json.step as number, tensors: state.tensors });
  }

  dispose(): void {
    this.optimizer.dispose();
  }
}

const minimal = definePlugin<Config>({
  name: 'reinforce-minimal',
  description: 'REINFORCE with a leave-one-out baseline and a clipped sequence ratio',
  configSchema: schema,
  requirements: () => ({ responsesPerPrompt: 2, referenceLogprobs: false, valueHead: false }),
  create: (context, config) => new Reinforce(context.policy, config),
});
export default minimal;
// --- CONTRIBUTING code ends ---

describe.each(TEST_BACKENDS)('CONTRIBUTING example plugin on %s', (backend) => {
  beforeAll(() => useBackend(backend));
  describeConformance({ describe, it }, minimal, { config: { epochs: 2 } });
});
