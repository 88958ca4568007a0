/**
 * Content fingerprints that key the reference log-prob cache: a change of the reference weights (or its
 * configuration) or of the tokenized data gives a different key, so stale values are never reused.
 */
import type { CausalLM } from '@relign/lm';
import type { TokenizedPair } from '@relign/reward-model';
import { createSha256 } from '@relign/tensor';

/**
 * SHA-256 (hex) of a model's configuration and **every** parameter value (names sorted, shapes, float32 bit
 * patterns). Unlike the Trainer's sampled fingerprint it sees every weight, so any change to the reference
 * invalidates the cache; hashing costs one host copy of the weights, far less than one pass over a dataset.
 * Each parameter is read asynchronously in turn (never the whole model on the host at once).
 */
export async function modelFingerprint(model: CausalLM): Promise<string> {
  const hash = createSha256();
  hash.update(`config:${JSON.stringify(model.config)};`);
  const vars = [...model.variables()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  for (const [name, v] of vars) {
    hash.update(`${name}:${v.dtype}:${v.shape.join('x')};`);
    const data = (await v.data()) as Float32Array | Int32Array;
    hash.update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }
  return hash.digest('hex');
}

/**
 * SHA-256 (hex) of tokenized preference pairs in order: each side's token ids and prompt length (the
 * response tokens whose log-probs are summed start there). Text, margins and other fields do not enter.
 */
export function pairsFingerprint(pairs: readonly TokenizedPair[]): string {
  const hash = createSha256();
  hash.update(`pairs:${pairs.length};`);
  for (const p of pairs) {
    for (const side of [p.chosen, p.rejected]) {
      hash.update(`${side.promptLength}/${side.length}:`);
      hash.update(new Uint8Array(side.ids.buffer, side.ids.byteOffset, side.ids.byteLength));
    }
  }
  return hash.digest('hex');
}
