/**
 * Token log-probabilities from logits at a sampling temperature (docs/algorithms.md §0, §4.2):
 * `ℓ[b,t] = logsoftmax(logits[b,t,:] / τ)[tokens[b,t]]`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { checkPositive, checkTensor } from '../validate.js';
import { fusedTokenLogprobs } from '../wasm/fused-ops.js';

const FN = 'logprobsFromLogits';

/**
 * Log-probability of each token under `softmax(logits / temperature)`.
 *
 * @param logits float32 `[B, T, V]`: the logit row that predicts each token (apply the causal-LM shift,
 *   logits `[:, :-1]` against tokens `[:, 1:]`, before calling; docs/algorithms.md §0).
 * @param tokens int32 `[B, T]`, each in `[0, V)`.
 * @param temperature τ > 0, the temperature the tokens were sampled at (docs/algorithms.md §4.2: use the same τ for the
 *   policy, the old policy and the reference). Default 1.
 * @returns float32 `[B, T]`.
 *
 * Differentiable w.r.t. `logits` on every backend: the forward picks the token logit with one `tf.gather`
 * on the flattened `[B·T·V]` logits (O(B·T), no `[B, T, V]` one-hot), and the gradient is given in closed
 * form through `tf.customGrad`, `∂ℓ/∂logits = (onehot(token) − softmax(logits/τ)) / τ`, so it never needs
 * `UnsortedSegmentSum` (the gather gradient, missing on stock wasm). The gradient is `−softmax·dy/τ` plus an
 * O(B·T) fix-up of the token entries with `tf.tensorScatterUpdate` where the backend has that kernel (cpu,
 * wasm), else plus a dense one-hot.
 *
 * Token ids are checked on the device, not read back (a synchronous read would stall a GPU backend): an id
 * outside `[0, V)` gives NaN at its position instead of another position's logit (which some backends would
 * read silently), so a loss over it is non-finite and the guarded optimizer step skips it. Check ids on the
 * host where they are built (tokenizer, collate) to get an error naming the row.
 */
export function logprobsFromLogits(logits: tf.Tensor3D, tokens: tf.Tensor2D, temperature = 1): tf.Tensor2D {
  const scatter = tf.getKernel('TensorScatterUpdate', tf.getBackend()) !== undefined;
  return logprobsFromLogitsWith(logits, tokens, temperature, scatter ? 'scatter' : 'onehot');
}

/**
 * {@link logprobsFromLogits} with the gradient strategy chosen by the caller (exported for tests, which
 * check both on every backend): `'scatter'` fixes up the token entries with `tf.tensorScatterUpdate`,
 * `'onehot'` adds a dense one-hot. @internal
 */
export function logprobsFromLogitsWith(
  logits: tf.Tensor3D,
  tokens: tf.Tensor2D,
  temperature: number,
  gradient: 'scatter' | 'onehot',
): tf.Tensor2D {
  checkTensor(logits, 'logits', FN, { rank: 3, layout: '[B, T, V]' });
  checkTensor(tokens, 'tokens', FN, { rank: 2, layout: '[B, T]', dtype: 'int32' });
  checkPositive(temperature, 'temperature', FN);
  const [B, T, V] = logits.shape;
  if (tokens.shape[0] !== B || tokens.shape[1] !== T) {
    throw new Error(
      `${FN}: \`tokens\` must have shape [B, T] = [${B}, ${T}] to match \`logits\` [${logits.shape.join(', ')}], ` +
        `got [${tokens.shape.join(', ')}]. For a causal LM, pair logits[:, :-1] with tokens[:, 1:].`,
    );
  }
  if (B * T * V > 2 ** 31 - 1) {
    throw new Error(
      `${FN}: \`logits\` has ${B * T * V} elements, more than int32 flat indices can address; split the batch.`,
    );
  }

  const n = B * T;
  const invTau = 1 / temperature;
  /** Flat index of (row r = b·T + t, token) in the [B·T·V] logits: r·V + token, int32 [B·T]. */
  const flatIndex = (tok: tf.Tensor): tf.Tensor =>
    tf.add(tf.mul(tf.range(0, n, 1, 'int32'), tf.scalar(V, 'int32')), tf.reshape(tok, [n]));
  // tfjs types the custom function's parameters as one variadic list of inputs and the save callback.
  const op = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const x = args[0] as tf.Tensor;
    const save = args[1] as tf.GradSaveFunc;
    const safeIds = () =>
      tf.mul(
        tokens,
        tf.cast(
          tf.logicalAnd(
            tf.greaterEqual(tokens, tf.scalar(0, 'int32')),
            tf.less(tokens, tf.scalar(V, 'int32')),
          ),
          'int32',
        ),
      );
    // On wasm: the log-softmax, the token pick and the range check as one kernel (same values up to rounding).
    const fusedValue = fusedTokenLogprobs(x, tokens, invTau);
    if (fusedValue) {
      save([x, safeIds()]);
      return { value: fusedValue as tf.Tensor2D, gradFunc };
    }
    const z = temperature === 1 ? x : tf.mul(x, invTau);
    const lse = tf.logSumExp(z, -1); // [B, T]
    // Out-of-range ids read id 0 (the gather never leaves its row) and their log-prob becomes NaN below;
    // in-range ids pass unchanged (×1), so valid results are bit-identical to an unchecked gather.
    const inRange = tf.logicalAnd(
      tf.greaterEqual(tokens, tf.scalar(0, 'int32')),
      tf.less(tokens, tf.scalar(V, 'int32')),
    );
    const safe = tf.mul(tokens, tf.cast(inRange, 'int32'));
    const picked = tf.reshape(tf.gather(tf.reshape(z, [n * V]), flatIndex(safe)), [B, T]);
    // The ids are saved too (a kept clone), so the caller may dispose `tokens` before backprop runs.
    save([x, safe]);
    return { value: tf.where(inRange, tf.sub(picked, lse), tf.fill([B, T], NaN)), gradFunc };
  });
  function gradFunc(dy: tf.Tensor, saved: tf.Tensor[]): tf.Tensor {
    const [xs, tok] = saved as [tf.Tensor, tf.Tensor2D];
    const zs = temperature === 1 ? xs : tf.mul(xs, invTau);
    const dyScaled = temperature === 1 ? dy : tf.mul(dy, invTau); // [B, T]
    // −softmax(z)·dy/τ everywhere, then +dy/τ at each row's token.
    const dense = tf.mul(tf.softmax(zs), tf.expandDims(tf.neg(dyScaled), -1));
    if (gradient === 'scatter') {
      // O(B·T) fix-up of the token entries instead of a dense one-hot (3 fewer [B, T, V] passes).
      const flat = tf.reshape(dense, [n * V]);
      const idx = tf.reshape(flatIndex(tok), [n, 1]);
      const atToken = tf.add(tf.gather(flat, tf.reshape(idx, [n])), tf.reshape(dyScaled, [n]));
      return tf.reshape(tf.tensorScatterUpdate(flat, idx, atToken), [B, T, V]);
    }
    // int32 one-hot then a cast: tfjs-backend-wasm 4.22's OneHot ignores `dtype` and writes int32 bits
    // into a float32 output (1 comes out as 1.4e-45).
    const onehot = tf.cast(tf.oneHot(tok, V), 'float32');
    return tf.add(dense, tf.mul(onehot, tf.expandDims(dyScaled, -1)));
  }
  return op(logits) as tf.Tensor2D;
}
