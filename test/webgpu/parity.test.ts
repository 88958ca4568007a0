/**
 * The GPT-2 model on webgpu against wasm: forward logits, the loss's gradients, and one guarded AdamW step
 * (the step every relign training loop takes) agree to ~1e-4. Both backends build the model from the same
 * seed, so their weights start bit-identical.
 */
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { AdamW, initBackend, type BackendName } from '@relign/tensor';
import { assertNoLeaks } from '@relign/tensor/testing';
import { CausalLM, causalLmLoss, disposeBatchTensors, type BatchTensors } from '@relign/lm';
import { itHasAdapter, startWebGPU } from './adapter.js';

const webgpu = await startWebGPU('parity.test.ts');

/** Two layers, so attention, MLP, layer norms and the tied embedding are all exercised. */
const CONFIG = { vocab_size: 64, n_positions: 16, n_embd: 32, n_layer: 2, n_head: 4 };
const B = 2;
const T = 8;
const IDS = [5, 17, 3, 44, 9, 61, 2, 30, 7, 7, 12, 50, 33, 1, 0, 0];
/** The second row is right-padded: masking takes part in the comparison. */
const MASK = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0];

interface Outcome {
  logits: Float32Array;
  loss: number;
  grads: Map<string, Float32Array>;
  updated: Map<string, Float32Array>;
  gradNorm: number;
  skipped: boolean;
}

function makeBatch(): BatchTensors {
  return {
    inputIds: tf.tensor2d(IDS, [B, T], 'int32'),
    attentionMask: tf.tensor2d(MASK, [B, T], 'int32'),
    targetMask: tf.tensor2d(
      [0, 1].flatMap((b) => MASK.slice(b * T + 1, (b + 1) * T)),
      [B, T - 1],
      'float32',
    ),
  };
}

/** Gradients of the causal-LM loss keyed as the model's variables (what `guardedStep` takes). */
function lossAndGrads(model: CausalLM, batch: BatchTensors) {
  const trainable = model.trainableVariables();
  const { value, grads } = tf.variableGrads(() => causalLmLoss(model, batch), [...trainable.values()]);
  const byName: Record<string, tf.Tensor> = {};
  for (const [name, v] of trainable) if (grads[v.name]) byName[name] = grads[v.name]!;
  return { trainable, value, grads, byName };
}

async function runOn(backend: BackendName): Promise<Outcome> {
  await initBackend(backend);
  const model = CausalLM.create(CONFIG, 11);
  const batch = makeBatch();
  const optimizer = new AdamW({ lr: 1e-3, weightDecay: 0.01 });
  try {
    const { logits, hidden } = model.forward(batch.inputIds, { attentionMask: batch.attentionMask });
    hidden.dispose();
    const logitValues = (await logits.data()) as Float32Array;
    logits.dispose();

    const { trainable, value, grads, byName } = lossAndGrads(model, batch);
    const loss = (await value.data())[0]!;
    const gradValues = new Map<string, Float32Array>();
    for (const [name, g] of Object.entries(byName)) gradValues.set(name, (await g.data()) as Float32Array);
    const r = await optimizer.guardedStep(byName, trainable, { loss, maxGradNorm: 1 });
    value.dispose();
    tf.dispose(grads);
    const updated = new Map<string, Float32Array>();
    for (const [name, v] of trainable) updated.set(name, (await v.data()) as Float32Array);
    return {
      logits: logitValues,
      loss,
      grads: gradValues,
      updated,
      gradNorm: r.gradNorm,
      skipped: r.skipped,
    };
  } finally {
    optimizer.dispose();
    model.dispose();
    disposeBatchTensors(batch);
  }
}

/** Largest |a − b| over every entry, and where. */
function maxDiff(a: Map<string, Float32Array>, b: Map<string, Float32Array>): { diff: number; at: string } {
  let diff = 0;
  let at = '';
  expect([...b.keys()]).toEqual([...a.keys()]);
  for (const [name, x] of a) {
    const y = b.get(name)!;
    expect(y.length, name).toBe(x.length);
    for (let i = 0; i < x.length; i++) {
      const d = Math.abs(x[i]! - y[i]!);
      if (!(d <= diff)) [diff, at] = [d, `${name}[${i}]: ${x[i]} vs ${y[i]}`];
    }
  }
  return { diff, at };
}

itHasAdapter(webgpu);

describe.skipIf(!webgpu.info)('GPT-2 on webgpu matches wasm', () => {
  let wasm: Outcome;
  let gpu: Outcome;
  beforeAll(async () => {
    wasm = await runOn('wasm');
    gpu = await runOn('webgpu');
    const logits = maxDiff(new Map([['l', wasm.logits]]), new Map([['l', gpu.logits]])).diff;
    const grads = maxDiff(wasm.grads, gpu.grads).diff;
    const params = maxDiff(wasm.updated, gpu.updated).diff;
    console.log(`webgpu vs wasm, max |diff|: logits ${logits}, gradients ${grads}, after AdamW ${params}`);
  });

  it('forward logits', () => {
    const one = (o: Outcome) => new Map([['logits', o.logits]]);
    expect(maxDiff(one(wasm), one(gpu)).diff).toBeLessThan(1e-4);
  });

  it('loss and gradients of every parameter', () => {
    expect(Math.abs(gpu.loss - wasm.loss)).toBeLessThan(1e-5);
    expect(wasm.grads.size).toBe([...wasm.updated.keys()].length);
    const d = maxDiff(wasm.grads, gpu.grads);
    expect(d.diff, d.at).toBeLessThan(1e-4);
  });

  it('one guarded AdamW step (clipping, weight decay) gives the same parameters', () => {
    expect(wasm.skipped).toBe(false);
    expect(gpu.skipped).toBe(false);
    expect(Math.abs(gpu.gradNorm - wasm.gradNorm)).toBeLessThan(1e-4 * Math.max(1, wasm.gradNorm));
    const d = maxDiff(wasm.updated, gpu.updated);
    expect(d.diff, d.at).toBeLessThan(1e-4);
  });
});

describe.skipIf(!webgpu.info)('training on webgpu', () => {
  it("a synchronous read of GPU data names the fix instead of 'OffscreenCanvas is not defined'", async () => {
    await initBackend('webgpu');
    const y = tf.tidy(() => tf.matMul(tf.ones([64, 64]), tf.ones([64, 64])));
    try {
      expect(() => y.dataSync()).toThrow(
        /not possible on the webgpu backend in Node.*await tensor\.data\(\)/,
      );
      expect((await y.data())[0]).toBe(64);
    } finally {
      y.dispose();
    }
  });

  it('keeps tensor counts flat over forward, backward and guarded AdamW steps', async () => {
    await initBackend('webgpu');
    const model = CausalLM.create(CONFIG, 11);
    const batch = makeBatch();
    const optimizer = new AdamW({ lr: 1e-3 });
    try {
      await assertNoLeaks(
        async () => {
          const { trainable, value, grads, byName } = lossAndGrads(model, batch);
          try {
            const loss = (await value.data())[0]!;
            const r = await optimizer.guardedStep(byName, trainable, { loss, maxGradNorm: 1 });
            expect(r.skipped).toBe(false);
          } finally {
            value.dispose();
            tf.dispose(grads);
          }
        },
        { label: 'a training step on webgpu' },
      );
      expect(optimizer.step).toBe(4);
    } finally {
      optimizer.dispose();
      model.dispose();
      disposeBatchTensors(batch);
    }
  });
});
