// Full fine-tuning vs LoRA on the same GPT-2 model: bytes held (parameters, Adam state, the frozen reference)
// and training-step time, on the active tfjs backend. Absolute numbers only: the two modes run here, in one
// process, one after the other.
import * as tf from '@tensorflow/tfjs-core';

const B = 8;
const T = 64;
const CONFIG = { vocab_size: 256, n_positions: 128, n_embd: 256, n_layer: 4, n_head: 4 };
const LORA = { r: 8, loraAlpha: 16 };

const bytesOf = (tensors) => tensors.reduce((n, t) => n + t.size * 4, 0);

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function measure(lm, mode) {
  const tensorsBefore = tf.memory().numTensors;
  const model = lm.CausalLM.create(CONFIG, 0);
  const adapter = mode === 'lora' ? lm.attachLora(model, LORA) : undefined;
  // The reference a Trainer would make: a frozen copy, or for LoRA the base view (no copy).
  const bytes = tf.memory().numBytes;
  const reference = adapter ? lm.loraBaseModel(model) : model.clone({ trainable: false });
  const referenceBytes = tf.memory().numBytes - bytes;

  const ids = tf.tidy(() =>
    tf.cast(tf.mul(tf.randomUniform([B, T], 0, 1, 'float32', 1), CONFIG.vocab_size - 1), 'int32'),
  );
  const labels = tf.tidy(() =>
    tf.oneHot(tf.reshape(tf.slice(ids, [0, 1], [B, T - 1]), [-1]), CONFIG.vocab_size),
  );
  const varList = [...model.trainableVariables().values()];
  const optimizer = tf.train.adam(1e-3);
  const loss = () =>
    tf.tidy(() => {
      const { logits } = model.forward(ids);
      const shifted = tf.reshape(tf.slice(logits, [0, 0, 0], [B, T - 1, CONFIG.vocab_size]), [
        -1,
        CONFIG.vocab_size,
      ]);
      return tf.losses.softmaxCrossEntropy(labels, shifted);
    });
  const step = async () => {
    const cost = optimizer.minimize(loss, true, varList);
    await cost.data();
    cost.dispose();
  };
  await step();
  const weights = await optimizer.getWeights();
  const optimizerStateBytes = bytesOf(weights.map((w) => w.tensor));
  // getWeights makes a new scalar for the step count ('iter'); the moments are the optimizer's own.
  for (const w of weights) if (w.name === 'iter') w.tensor.dispose();
  const ms = [];
  for (let i = 0; i < 4; i++) {
    const t0 = performance.now();
    await step();
    ms.push(performance.now() - t0);
  }
  const result = {
    parameters: model.numParameters() + (adapter ? adapter.numParameters() : 0),
    trainableParameters: varList.reduce((n, v) => n + v.size, 0),
    parameterBytes: bytesOf([
      ...model.variables().values(),
      ...(adapter ? adapter.variables().values() : []),
    ]),
    trainableBytes: bytesOf(varList),
    optimizerStateBytes,
    referenceBytes,
    // Everything tfjs holds after the steps (model, adapter, reference, optimizer state, inputs).
    tfMemoryBytes: tf.memory().numBytes,
    trainStepMs: Number(median(ms).toFixed(1)),
  };
  optimizer.dispose();
  tf.dispose([ids, labels]);
  reference.dispose();
  if (adapter) lm.detachLora(model);
  model.dispose();
  result.leakedTensors = tf.memory().numTensors - tensorsBefore;
  return result;
}

/**
 * @param lm the built @relign/lm module (needs `CausalLM`, `attachLora`, `loraBaseModel`, `detachLora`).
 * @returns { config, batch, seqLen, lora, full: {...}, lora: {...} }, each mode as measured by `measure`.
 */
export async function benchLora(lm) {
  const out = { config: CONFIG, batch: B, seqLen: T, loraOptions: LORA };
  for (const mode of ['full', 'lora']) {
    console.error(`bench: ${mode} fine-tuning`);
    try {
      out[mode] = await measure(lm, mode);
    } catch (err) {
      out[mode] = { error: String(err?.message ?? err).split('\n')[0] };
    }
  }
  return out;
}
