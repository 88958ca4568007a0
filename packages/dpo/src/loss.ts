/**
 * The DPO family of preference losses (docs/algorithms.md §3): DPO (sigmoid), conservative DPO (cDPO, label smoothing),
 * robust DPO (rDPO) and IPO, on per-example sums of response-token log-probs. Check vector: docs/algorithms.md §5.2 T13.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  checkNumber,
  checkObject,
  checkOptions,
  checkTensor,
  describeValue,
  stopGradient,
} from '@relign/tensor';

/** Which member of the family (docs/algorithms.md §3.1–§3.3). */
export type DpoLossType = 'sigmoid' | 'ipo' | 'robust';

/**
 * How IPO measures a response's log-ratio (docs/algorithms.md §3.3 [CHOICE]): `'mean'` divides each sequence's log-ratio
 * by its own response token count (TRL HEAD, the IPO authors' setting; the default), `'sum'` uses the plain
 * sums (eric-mitchell, OpenRLHF, TRL's online trainer). DPO and rDPO always use sums (docs/algorithms.md §3.1).
 */
export type IpoNormalization = 'mean' | 'sum';

export const DPO_LOSS_TYPES: readonly DpoLossType[] = ['sigmoid', 'ipo', 'robust'];
export const IPO_NORMALIZATIONS: readonly IpoNormalization[] = ['mean', 'sum'];

/** Inputs of {@link dpoLoss}: B preference pairs, every tensor float32 `[B]`. */
export interface DpoLossInputs {
  /** `S_θ(y_w)`: sum of the chosen response's token log-probs under the policy (carries the gradient). */
  policyChosen: tf.Tensor1D;
  /** `S_θ(y_l)`: the same for the rejected response (carries the gradient). */
  policyRejected: tf.Tensor1D;
  /** `S_ref(y_w)` under the frozen reference (data). All zeros gives reference-free DPO (docs/algorithms.md §3.1). */
  refChosen: tf.Tensor1D;
  /** `S_ref(y_l)` under the frozen reference (data). */
  refRejected: tf.Tensor1D;
  /**
   * `[B]` response token counts of the chosen responses (EOS included, docs/algorithms.md §0). Needed only by IPO with
   * `ipoNormalization: 'mean'` (the default for IPO).
   */
  chosenLengths?: tf.Tensor1D | ArrayLike<number>;
  /** `[B]` response token counts of the rejected responses (IPO with `'mean'` only). */
  rejectedLengths?: tf.Tensor1D | ArrayLike<number>;
  /**
   * `[B]` soft labels: the probability that "chosen" really is preferred (data, in [0, 1]; default 1 = hard
   * labels). Each pair's loss becomes `p·ℓ(h) + (1 − p)·ℓ(−h)`, the expected loss over the label; for DPO this
   * is the Bradley–Terry soft-label loss of docs/algorithms.md §1.12 `−p·log σ(βh) − (1 − p)·log σ(−βh)`.
   */
  preference?: tf.Tensor1D;
}

/** Options of {@link dpoLoss} (defaults: docs/algorithms.md §3.1, β = 0.1, DPO, no smoothing; IPO per-token means). */
export interface DpoLossOptions {
  /** β > 0: the inverse temperature of DPO (τ of IPO, docs/algorithms.md §3.3). Default 0.1. */
  beta?: number;
  /** Default `'sigmoid'`. */
  lossType?: DpoLossType;
  /**
   * ε in [0, 0.5): the assumed fraction of flipped labels. `'sigmoid'` with ε > 0 is cDPO, `'robust'` is rDPO
   * (docs/algorithms.md §3.2). IPO has no label smoothing (must be 0). Default 0.
   */
  labelSmoothing?: number;
  /** IPO only: `'mean'` (default) or `'sum'`, see {@link IpoNormalization}. */
  ipoNormalization?: IpoNormalization;
}

/** What {@link dpoLoss} returns; every tensor is owned by the caller. */
export interface DpoLossResult {
  /** Mean of `losses` over the batch; minimise it. Carries the gradient. */
  loss: tf.Scalar;
  /** `[B]` per-pair losses (carry the gradient). */
  losses: tf.Tensor1D;
  /** `[B]` the "logits" `h` of docs/algorithms.md §3.1 (per-token form for IPO `'mean'`); detached. */
  logits: tf.Tensor1D;
  /** `[B]` implicit reward of the chosen response `β(S_θ(y_w) − S_ref(y_w))` (sums), detached (docs/algorithms.md §3.1). */
  chosenReward: tf.Tensor1D;
  /** `[B]` implicit reward of the rejected response `β(S_θ(y_l) − S_ref(y_l))`, detached. */
  rejectedReward: tf.Tensor1D;
  /** Scalar: reward accuracy `mean[r̂_w > r̂_l]` (0 when the policy equals the reference). */
  accuracy: tf.Scalar;
  /** Scalar: reward margin `mean[r̂_w − r̂_l]`. */
  margin: tf.Scalar;
}

const FN = 'dpoLoss';
const INPUT_FIELDS = ['policyChosen', 'policyRejected', 'refChosen', 'refRejected'] as const;
const OPTION_KEYS = ['beta', 'lossType', 'labelSmoothing', 'ipoNormalization'] as const;

/** The resolved options (defaults filled, ranges checked). */
export type ResolvedDpoLossOptions = Required<DpoLossOptions>;

/**
 * Fills in the defaults of {@link DpoLossOptions} and checks them: β finite and > 0, a known loss type,
 * ε in [0, 0.5), no smoothing with IPO. Unknown keys (typos such as `label_smoothing`) are errors.
 * @throws Error naming `fn`, the option and the fix.
 */
export function resolveDpoLossOptions(options: DpoLossOptions | undefined, fn = FN): ResolvedDpoLossOptions {
  checkOptions(options, OPTION_KEYS, fn);
  const out: ResolvedDpoLossOptions = {
    beta: options?.beta ?? 0.1,
    lossType: options?.lossType ?? 'sigmoid',
    labelSmoothing: options?.labelSmoothing ?? 0,
    ipoNormalization: options?.ipoNormalization ?? 'mean',
  };
  checkNumber(out.beta, 'beta', fn, (v) => v > 0, '> 0 (docs/algorithms.md §3.1 uses 0.1)', { finite: true });
  if (!DPO_LOSS_TYPES.includes(out.lossType)) {
    throw new Error(
      `${fn}: \`lossType\` must be one of ${DPO_LOSS_TYPES.map((t) => `'${t}'`).join(', ')}, got ${String(out.lossType)}.`,
    );
  }
  const eps = out.labelSmoothing;
  if (typeof eps !== 'number' || !Number.isFinite(eps) || eps < 0 || eps >= 0.5) {
    throw new Error(
      `${fn}: \`labelSmoothing\` must be in [0, 0.5) (the fraction of flipped labels; 0 = plain DPO), got ${String(eps)}.`,
    );
  }
  if (out.lossType === 'ipo' && eps !== 0) {
    throw new Error(
      `${fn}: \`labelSmoothing\` is ${eps}, but IPO has no label smoothing (docs/algorithms.md §3.3); set it to 0, or use ` +
        "lossType 'sigmoid' (cDPO) or 'robust' (rDPO).",
    );
  }
  if (!IPO_NORMALIZATIONS.includes(out.ipoNormalization)) {
    throw new Error(
      `${fn}: \`ipoNormalization\` must be 'mean' or 'sum', got ${String(out.ipoNormalization)}.`,
    );
  }
  return out;
}

/** Checks a `[B]` float32 tensor input; returns its length. */
function checkVector(t: unknown, name: string, batch: number | undefined): number {
  const v = checkTensor(t, name, FN, {
    rank: 1,
    layout: '[B] (one summed log-prob per example)',
    hint: 'sum the response-token log-probs of each sequence first',
  });
  const b = v.shape[0] as number;
  if (batch === undefined) {
    if (b < 1) throw new Error(`${FN}: \`${name}\` is empty; a batch needs at least one pair.`);
  } else if (b !== batch) {
    throw new Error(
      `${FN}: \`${name}\` has shape [${b}], but \`policyChosen\` is [${batch}]; all inputs must be [B].`,
    );
  }
  return b;
}

/** Lengths as a float32 tensor `[B]` (a new tensor; values checked when given on the host). */
function lengthTensor(value: tf.Tensor1D | ArrayLike<number>, name: string, batch: number): tf.Tensor1D {
  if (value instanceof tf.Tensor) {
    if (value.dtype !== 'int32') checkVector(value, name, batch);
    else if (value.rank !== 1 || value.shape[0] !== batch) {
      throw new Error(
        `${FN}: \`${name}\` must have shape [B] = [${batch}], got [${value.shape.join(', ')}].`,
      );
    }
    return tf.cast(value, 'float32');
  }
  if (
    value === null ||
    typeof value !== 'object' ||
    typeof (value as ArrayLike<number>).length !== 'number'
  ) {
    throw new TypeError(
      `${FN}: \`${name}\` must be a Tensor1D or an array of B token counts, got ${describeValue(value)}.`,
    );
  }
  if (value.length !== batch)
    throw new Error(`${FN}: \`${name}\` has ${value.length} entries; expected B = ${batch}.`);
  const host = Float32Array.from(value);
  host.forEach((n, i) => {
    if (!Number.isInteger(n) || n < 1) {
      throw new Error(
        `${FN}: \`${name}\`[${i}] = ${n}; token counts must be integers >= 1 (a response has at least its EOS).`,
      );
    }
  });
  return tf.tensor1d(host, 'float32');
}

/**
 * One direction's loss for logits `x` (docs/algorithms.md §3.1–§3.3), with `log σ(u) = −softplus(−u)` (docs/algorithms.md §0; tfjs's
 * `logSigmoid` gradient is broken inside a differentiated function):
 *
 *     sigmoid (DPO, cDPO):  (1 − ε)·softplus(−βx) + ε·softplus(βx)
 *     robust (rDPO):        [(1 − ε)·softplus(−βx) − ε·softplus(βx)] / (1 − 2ε)
 *     ipo:                  (x − 1/(2β))²
 */
function directionLoss(x: tf.Tensor1D, o: ResolvedDpoLossOptions): tf.Tensor1D {
  const { beta, labelSmoothing: eps } = o;
  if (o.lossType === 'ipo') return tf.square(tf.sub(x, 1 / (2 * beta))) as tf.Tensor1D;
  const u = tf.mul(x, beta);
  const agree = tf.softplus(tf.neg(u)); // −log σ(βx)
  if (eps === 0) return agree as tf.Tensor1D;
  const disagree = tf.softplus(u); // −log σ(−βx)
  if (o.lossType === 'sigmoid') return tf.add(tf.mul(agree, 1 - eps), tf.mul(disagree, eps));
  return tf.div(tf.sub(tf.mul(agree, 1 - eps), tf.mul(disagree, eps)), 1 - 2 * eps);
}

/**
 * The DPO-family loss over B preference pairs (docs/algorithms.md §3):
 *
 *     L_w = S_θ(y_w) − S_ref(y_w),  L_l = S_θ(y_l) − S_ref(y_l)     (per-example sums, docs/algorithms.md §0)
 *     h   = L_w − L_l           (IPO 'mean': L_w/|y_w| − L_l/|y_l|, docs/algorithms.md §3.3)
 *     loss_i = ℓ(h_i)           (ℓ per lossType, see below; with soft labels p·ℓ(h) + (1 − p)·ℓ(−h))
 *     loss   = mean_i loss_i
 *
 * - `'sigmoid'`: DPO `−log σ(βh)` (docs/algorithms.md §3.1); with `labelSmoothing` ε > 0, cDPO
 *   `−(1−ε)·log σ(βh) − ε·log σ(−βh)` (docs/algorithms.md §3.2). ∂loss_i/∂S_θ(y_w) = −β[(1−ε)σ(−βh) − εσ(βh)].
 * - `'robust'`: rDPO `[−(1−ε)·log σ(βh) + ε·log σ(−βh)] / (1 − 2ε)` (docs/algorithms.md §3.2).
 * - `'ipo'`: `(h − 1/(2β))²` (docs/algorithms.md §3.3), ∂/∂h = 2(h − 1/(2β)).
 *
 * At θ = ref (h = 0) the DPO loss is ln 2 for every pair. Implicit rewards, accuracy and margin are the
 * logged quantities of docs/algorithms.md §3.1 (sums, detached, whatever the loss type).
 *
 * Call it inside the function given to `tf.variableGrads`; the reference terms and labels are data. Every
 * returned tensor is owned by the caller.
 *
 * @param inputs `policyChosen`, `policyRejected`, `refChosen`, `refRejected`: float32 `[B]` sums of
 *   response-token log-probs; optional `chosenLengths` / `rejectedLengths` `[B]` (IPO 'mean') and
 *   `preference` `[B]` (soft labels).
 * @param options `{ beta, lossType, labelSmoothing, ipoNormalization }` (defaults 0.1, 'sigmoid', 0, 'mean').
 * @throws Error naming the input or option that is invalid, and the fix.
 */
export function dpoLoss(inputs: DpoLossInputs, options?: DpoLossOptions): DpoLossResult {
  checkObject(inputs, 'inputs', FN, INPUT_FIELDS);
  const o = resolveDpoLossOptions(options);
  let batch: number | undefined;
  for (const field of INPUT_FIELDS) batch = checkVector(inputs[field], field, batch);
  const B = batch as number;
  if (inputs.preference !== undefined) checkVector(inputs.preference, 'preference', B);
  const perToken = o.lossType === 'ipo' && o.ipoNormalization === 'mean';
  if (perToken && (inputs.chosenLengths === undefined || inputs.rejectedLengths === undefined)) {
    throw new Error(
      `${FN}: IPO with ipoNormalization 'mean' (the default, docs/algorithms.md §3.3) divides each log-ratio by its response length; ` +
        "pass inputs.chosenLengths and inputs.rejectedLengths ([B] token counts), or set ipoNormalization: 'sum'.",
    );
  }
  return tf.tidy(() => {
    const logRatioW = tf.sub(inputs.policyChosen, inputs.refChosen);
    const logRatioL = tf.sub(inputs.policyRejected, inputs.refRejected);
    let h: tf.Tensor1D;
    if (perToken) {
      const lenW = lengthTensor(inputs.chosenLengths!, 'chosenLengths', B);
      const lenL = lengthTensor(inputs.rejectedLengths!, 'rejectedLengths', B);
      h = tf.sub(tf.div(logRatioW, lenW), tf.div(logRatioL, lenL));
    } else {
      h = tf.sub(logRatioW, logRatioL);
    }
    let losses = directionLoss(h, o);
    const p = inputs.preference;
    if (p !== undefined) {
      // Expected loss over a label that is right with probability p (docs/algorithms.md §1.12 soft Bradley–Terry labels).
      losses = tf.add(tf.mul(p, losses), tf.mul(tf.sub(1, p), directionLoss(tf.neg(h), o))) as tf.Tensor1D;
    }
    const loss = tf.mean(losses) as tf.Scalar;

    const chosenReward = tf.mul(stopGradient(logRatioW), o.beta) as tf.Tensor1D;
    const rejectedReward = tf.mul(stopGradient(logRatioL), o.beta) as tf.Tensor1D;
    return {
      loss,
      losses,
      logits: stopGradient(h),
      chosenReward,
      rejectedReward,
      accuracy: tf.mean(tf.cast(tf.greater(chosenReward, rejectedReward), 'float32')) as tf.Scalar,
      margin: tf.mean(tf.sub(chosenReward, rejectedReward)) as tf.Scalar,
    };
  });
}
