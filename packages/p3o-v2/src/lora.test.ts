import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Trainer, latestCheckpoint, type Metrics } from '@relign/core';
import { countTokenReward } from '@relign/core/testing';
import { CausalLM, attachLora, detachLora, loadLoraAdapter, type LoraAdapter } from '@relign/lm';
import { useBackend } from '@relign/tensor/testing';
import plugin from './index.js';

/**
 * A LoRA P3O-V2 run through the Trainer (issue 16: "a LoRA P3O-V2 run saves a PEFT adapter that loads back"):
 * only the adapters train, the reference is the base (no copy), and checkpoints hold a PEFT adapter.
 */
const MODEL = { vocab_size: 16, n_positions: 24, n_embd: 32, n_layer: 1, n_head: 2, initializer_range: 0.2 };
const PROMPTS = [[1, 2], [4, 5, 6], [7], [8, 9], [10, 11, 12], [13]];

function host(vars: Map<string, tf.Variable>): Map<string, Float32Array> {
  return new Map([...vars].map(([n, v]) => [n, (v.dataSync() as Float32Array).slice()]));
}

function logits(model: CausalLM): Float32Array {
  const { logits: l, hidden } = model.forward(PROMPTS.slice(0, 1));
  hidden.dispose();
  const out = l.dataSync() as Float32Array;
  l.dispose();
  return out;
}

describe('p3o-v2 trains a LoRA policy (cpu)', () => {
  let dir: string;
  beforeAll(async () => {
    await useBackend('cpu');
    dir = await mkdtemp(join(tmpdir(), 'relign-lora-p3o-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  function trainer(
    policy: CausalLM,
    extra: { onMetrics?: (m: Metrics) => void; resume?: boolean; iterations?: number } = {},
  ) {
    return new Trainer({
      policy,
      plugin,
      pluginConfig: { lr: 1e-2 },
      prompts: PROMPTS,
      reward: countTokenReward(3),
      generation: { maxNewTokens: 6, stopTokenIds: [0] },
      promptsPerIteration: 3,
      iterations: 3,
      kl: { kind: 'fixed', value: 0.5 },
      seed: 5,
      checkpointDir: dir,
      checkpointEvery: 3,
      ...extra,
    });
  }

  it('trains only A and B, uses the base as reference without a copy, and checkpoints a PEFT adapter', async () => {
    const policy = CausalLM.create(MODEL, 3);
    const adapter: LoraAdapter = attachLora(policy, { r: 4, loraAlpha: 8 });
    const base = host(policy.variables());
    const lora = host(adapter.variables());
    const baseBytes = [...policy.variables().values()].reduce((n, v) => n + v.size * 4, 0);

    const metrics: Metrics[] = [];
    const t = trainer(policy, { onMetrics: (m) => metrics.push(m) });
    const bytesBefore = tf.memory().numBytes;
    await t.init();
    // A cloned reference would add the base's bytes; the base view adds none (plugin state is tiny here).
    expect(tf.memory().numBytes - bytesBefore).toBeLessThan(baseBytes / 2);
    const result = await t.train();
    expect(result.step).toBe(3);
    t.dispose();

    for (const [name, v] of policy.variables()) {
      expect(Array.from(v.dataSync()), `${name} (base weight)`).toEqual(Array.from(base.get(name)!));
    }
    const moved = [...adapter.variables()].filter(([n, v]) =>
      v.dataSync().some((x, i) => x !== lora.get(n)![i]),
    );
    expect(moved.length).toBeGreaterThan(0);
    // The policy moved away from its reference (the base): the KL the trainer measured is not zero.
    expect(metrics.some((m) => Math.abs(m['objective/kl'] ?? 0) > 1e-6)).toBe(true);

    // The checkpoint's policy is a PEFT adapter, and it loads back onto a fresh copy of the base.
    const ckpt = (await latestCheckpoint(dir))!;
    expect((await readdir(join(ckpt, 'policy'))).sort()).toEqual([
      'adapter_config.json',
      'adapter_model.safetensors',
    ]);
    const fresh = CausalLM.create(MODEL, 3);
    await loadLoraAdapter(fresh, join(ckpt, 'policy'));
    const a = logits(policy);
    const b = logits(fresh);
    expect(Math.max(...a.map((x, i) => Math.abs(x - b[i]!)))).toBeLessThan(1e-6);
    detachLora(fresh);
    fresh.dispose();

    // Resume: a new LoRA policy on the same base gets the checkpoint's adapter.
    const again = CausalLM.create(MODEL, 3);
    const adapter2 = attachLora(again, { r: 4, loraAlpha: 8 });
    const resumed = trainer(again, { resume: true, iterations: 3 });
    await resumed.init();
    for (const [n, v] of adapter2.variables()) {
      expect(Array.from(v.dataSync()), n).toEqual(Array.from(adapter.variables().get(n)!.dataSync()));
    }
    resumed.dispose();
    detachLora(again);
    again.dispose();
    detachLora(policy);
    policy.dispose();
  });
});
