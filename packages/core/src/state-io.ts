/**
 * Serialisation of a plugin's {@link PluginState}: the JSON part as UTF-8 JSON, the tensors as one
 * safetensors buffer. One code path for the Trainer's checkpoints and the conformance suite's round trip,
 * so a plugin that passes the suite also survives a checkpoint.
 */
import * as tf from '@tensorflow/tfjs-core';
import { parseSafetensors, serializeSafetensors, type TensorData } from '@relign/tensor';
import type { PluginState } from './plugin.js';

/** A plugin state as bytes: `json` (UTF-8 JSON text) and `tensors` (a safetensors file). */
export interface SerializedPluginState {
  json: string;
  tensors: Uint8Array;
}

/**
 * Downloads and serialises a state. The state's tensors are not disposed (the caller owns them).
 *
 * @throws Error naming the plugin, when the JSON part does not survive `JSON.stringify` (functions,
 *   `undefined`, non-finite numbers, bigint) or a tensor is not float32/int32/bool.
 */
export async function serializePluginState(
  state: PluginState,
  pluginName: string,
): Promise<SerializedPluginState> {
  const where = `${pluginName}: state()`;
  if (state === null || typeof state !== 'object' || !(state.tensors instanceof Map)) {
    throw new Error(`${where} must return {json: object, tensors: Map<string, tf.Tensor>}.`);
  }
  checkJson(state.json, `${where}.json`);
  const data = new Map<string, TensorData>();
  for (const [name, t] of state.tensors) {
    if (!(t instanceof tf.Tensor) || t.isDisposed) {
      throw new Error(`${where}.tensors['${name}'] is not a live tf.Tensor (disposed too early?).`);
    }
    const shape = t.shape.slice();
    if (t.dtype === 'float32') {
      data.set(name, { dtype: 'float32', shape, data: (await t.data()) as Float32Array });
    } else if (t.dtype === 'int32' || t.dtype === 'bool') {
      data.set(name, { dtype: 'int32', shape, data: Int32Array.from(await t.data()) });
    } else {
      throw new Error(
        `${where}.tensors['${name}'] has dtype ${t.dtype}; only float32, int32 and bool are saved.`,
      );
    }
  }
  return {
    json: JSON.stringify(state.json),
    tensors: serializeSafetensors(data, { format: 'relign-plugin-state' }),
  };
}

/** Parses {@link serializePluginState} output into a state whose tensors the caller owns (and disposes). */
export function deserializePluginState(
  serialized: SerializedPluginState,
  source = 'plugin state',
): PluginState {
  let json: unknown;
  try {
    json = JSON.parse(serialized.json);
  } catch (err) {
    throw new Error(`${source}: the JSON part is not valid JSON (${(err as Error).message}).`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new Error(`${source}: the JSON part must be an object.`);
  }
  const file = parseSafetensors(serialized.tensors, source);
  const tensors = new Map<string, tf.Tensor>();
  for (const [name, t] of file.tensors) tensors.set(name, tf.tensor(t.data, t.shape, t.dtype));
  return { json: json as Record<string, unknown>, tensors };
}

/** Disposes the tensors of a state. */
export function disposePluginState(state: PluginState | undefined): void {
  if (!state) return;
  for (const t of state.tensors.values()) t.dispose();
}

function checkJson(value: unknown, path: string): void {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) {
      throw new Error(`${path} = ${value} is not finite; JSON cannot store it (use null or a tensor).`);
    }
    return;
  }
  if (Array.isArray(value)) {
    value.forEach((v, i) => checkJson(v, `${path}[${i}]`));
    return;
  }
  if (typeof value === 'object' && !ArrayBuffer.isView(value)) {
    if (
      path.endsWith('.json') &&
      Object.getPrototypeOf(value) !== Object.prototype &&
      Object.getPrototypeOf(value) !== null
    ) {
      throw new Error(`${path} must be a plain object.`);
    }
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      if (v === undefined) continue; // dropped by JSON.stringify, like an absent key
      checkJson(v, `${path}.${k}`);
    }
    return;
  }
  throw new Error(
    `${path} is ${ArrayBuffer.isView(value) ? 'a typed array' : typeof value}, which JSON does not round-trip; ` +
      'store numbers in arrays (Array.from) or put tensors in state().tensors.',
  );
}
