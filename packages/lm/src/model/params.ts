/**
 * The parameters of a GPT-2 model: Hugging Face names, shapes (Conv1D weights stored [in, out], as in the
 * HF checkpoint) and GPT-2's initialisation.
 */
import { innerDim, type GPT2Config } from './config.js';
import { fillNormal, type Rng } from './init.js';

export type ParamInit = { kind: 'normal'; std: number } | { kind: 'ones' } | { kind: 'zeros' };

/** One parameter tensor of the model. */
export interface ParamSpec {
  /** HF name without the `transformer.` prefix, e.g. `h.0.attn.c_attn.weight`. */
  name: string;
  shape: number[];
  init: ParamInit;
}

/**
 * Every parameter in a fixed order (wte, wpe, blocks 0..L-1, ln_f). The order fixes which PRNG draws go
 * to which tensor, so it must not change (same seed -> same weights).
 *
 * Init follows GPT-2 (HF `GPT2PreTrainedModel._init_weights`): normal(0, initializer_range) for embeddings
 * and Conv1D weights, normal(0, initializer_range / sqrt(2 n_layer)) for the residual projections
 * (`attn.c_proj`, `mlp.c_proj`), LayerNorm gain 1 and bias 0, other biases 0.
 */
export function parameterSpecs(config: GPT2Config): ParamSpec[] {
  const D = config.n_embd;
  const F = innerDim(config);
  const std = config.initializer_range;
  const residStd = std / Math.sqrt(2 * Math.max(config.n_layer, 1));
  const normal = (s: number): ParamInit => ({ kind: 'normal', std: s });
  const ones: ParamInit = { kind: 'ones' };
  const zeros: ParamInit = { kind: 'zeros' };
  const specs: ParamSpec[] = [
    { name: 'wte.weight', shape: [config.vocab_size, D], init: normal(std) },
    { name: 'wpe.weight', shape: [config.n_positions, D], init: normal(std) },
  ];
  for (let i = 0; i < config.n_layer; i++) {
    const p = `h.${i}.`;
    specs.push(
      { name: `${p}ln_1.weight`, shape: [D], init: ones },
      { name: `${p}ln_1.bias`, shape: [D], init: zeros },
      { name: `${p}attn.c_attn.weight`, shape: [D, 3 * D], init: normal(std) },
      { name: `${p}attn.c_attn.bias`, shape: [3 * D], init: zeros },
      { name: `${p}attn.c_proj.weight`, shape: [D, D], init: normal(residStd) },
      { name: `${p}attn.c_proj.bias`, shape: [D], init: zeros },
      { name: `${p}ln_2.weight`, shape: [D], init: ones },
      { name: `${p}ln_2.bias`, shape: [D], init: zeros },
      { name: `${p}mlp.c_fc.weight`, shape: [D, F], init: normal(std) },
      { name: `${p}mlp.c_fc.bias`, shape: [F], init: zeros },
      { name: `${p}mlp.c_proj.weight`, shape: [F, D], init: normal(residStd) },
      { name: `${p}mlp.c_proj.bias`, shape: [D], init: zeros },
    );
  }
  specs.push({ name: 'ln_f.weight', shape: [D], init: ones }, { name: 'ln_f.bias', shape: [D], init: zeros });
  return specs;
}

/** Number of elements of a shape. */
export function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Draws the initial value of one parameter (normal draws consume `rng`; ones/zeros do not). */
export function initialValue(spec: ParamSpec, rng: Rng): Float32Array {
  const out = new Float32Array(sizeOf(spec.shape));
  if (spec.init.kind === 'normal') fillNormal(rng, out, spec.init.std);
  else if (spec.init.kind === 'ones') out.fill(1);
  return out;
}
