/**
 * Model size, checked before anything is allocated. A config such as `n_layer: 1e9` is valid field by
 * field, but building it would spend minutes creating parameter specs and tensors and then die out of memory;
 * the closed-form count below rejects it at once, naming the file and the field that makes it too big.
 */
import { totalmem } from 'node:os';
import { innerDim, type GPT2Config } from './config.js';

/** Parameters of a GPT-2 model with `config` (the closed form of `parameterSpecs`). */
export function parameterCount(config: GPT2Config): number {
  return sizeTerms(config).reduce((a, t) => a + t.count, 0);
}

/** The parameter count split by the field that scales each part. */
function sizeTerms(config: GPT2Config): { field: keyof GPT2Config; count: number }[] {
  const D = config.n_embd;
  const F = innerDim(config);
  // Per block: ln_1, ln_2 (2D each), c_attn (D·3D + 3D), attn c_proj (D·D + D), c_fc (D·F + F), mlp c_proj (F·D + D).
  const block = 4 * D + (3 * D * D + 3 * D) + (D * D + D) + (D * F + F) + (F * D + D);
  return [
    { field: 'vocab_size', count: config.vocab_size * D },
    { field: 'n_positions', count: config.n_positions * D },
    { field: 'n_layer', count: config.n_layer * block },
    { field: 'n_embd', count: 2 * D }, // ln_f
  ];
}

function gib(bytes: number): string {
  if (bytes < 2 ** 20) return `${bytes} bytes`;
  const g = bytes / 2 ** 30;
  return `${g >= 1000 ? Math.round(g) : +g.toPrecision(3)} GiB`;
}

/**
 * Throws when the float32 parameters of `config` need more than `maxBytes` (default: this machine's total
 * memory, `os.totalmem()`, which no model larger than it can fit in). Training needs several times the
 * weights (gradients, AdamW moments, activations), so a model that passes may still not train here.
 *
 * @param source what the message calls the config (e.g. the config.json path).
 * @throws Error naming `source`, the estimated size, the limit, and the field that contributes most.
 */
export function checkModelSize(config: GPT2Config, source: string, maxBytes?: number): void {
  const limit = maxBytes ?? totalmem();
  if (!(limit > 0)) throw new Error(`${source}: maxParameterBytes must be > 0 (got ${String(maxBytes)}).`);
  const terms = sizeTerms(config);
  const bytes = 4 * terms.reduce((a, t) => a + t.count, 0);
  if (bytes <= limit) return;
  const biggest = terms.reduce((a, t) => (t.count > a.count ? t : a));
  throw new Error(
    `${source}: the model would have ${parameterCount(config).toExponential(3)} parameters = ` +
      `${gib(bytes)} of float32 weights, more than ${maxBytes === undefined ? "this machine's memory" : 'maxParameterBytes'} ` +
      `(${gib(limit)}); most of it comes from "${biggest.field}": ${config[biggest.field]}. Fix that field ` +
      '(is the config.json damaged?), or pass maxParameterBytes to raise the limit.',
  );
}
