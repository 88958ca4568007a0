import fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { float16ToFloat32, readSafetensors, writeSafetensors, type TensorData } from './safetensors.js';
import { bfloat16ToFloat32, float32ToBfloat16Bits } from './safetensors-half.js';
import {
  readSafetensorsDir,
  SAFETENSORS_INDEX_NAME,
  SAFETENSORS_WEIGHTS_NAME,
  writeSafetensorsDir,
} from './safetensors-dir.js';

let root: string;
let n = 0;
const fresh = async (): Promise<string> => fsp.mkdtemp(join(root, `d${n++}-`));
beforeAll(async () => {
  root = await fsp.mkdtemp(join(tmpdir(), 'relign-stdir-'));
});
afterAll(async () => {
  await fsp.rm(root, { recursive: true, force: true });
});

function f32(shape: number[], start: number): TensorData {
  const count = shape.reduce((a, d) => a * d, 1);
  return { dtype: 'float32', shape, data: Float32Array.from({ length: count }, (_, i) => start + i * 0.37) };
}

/** A small "model": 4 float32 tensors of 400/240/400/64 bytes and one int32. */
function model(): Map<string, TensorData> {
  return new Map<string, TensorData>([
    ['model.embed_tokens.weight', f32([10, 10], 1)],
    ['model.layers.0.self_attn.q_proj.weight', f32([6, 10], -3)],
    ['model.layers.1.mlp.up_proj.weight', f32([10, 10], 0.5)],
    ['model.norm.weight', f32([16], 2)],
    ['position_ids', { dtype: 'int32', shape: [2], data: Int32Array.from([0, 1]) }],
  ]);
}

describe('writeSafetensorsDir / readSafetensorsDir', () => {
  it('writes one model.safetensors when the weights fit a shard, and reads it back exactly', async () => {
    const dir = await fresh();
    const res = await writeSafetensorsDir(dir, model());
    expect(res).toEqual({ files: [join(dir, SAFETENSORS_WEIGHTS_NAME)], sharded: false });
    expect((await fsp.readdir(dir)).sort()).toEqual([SAFETENSORS_WEIGHTS_NAME]);
    const back = await readSafetensorsDir(dir);
    expect(back.sharded).toBe(false);
    expect(back.metadata).toEqual({ format: 'pt' });
    for (const [name, t] of model()) expect(back.tensors.get(name)).toEqual(t);
  });

  it('shards in the Hugging Face layout and round-trips', async () => {
    const dir = await fresh();
    const res = await writeSafetensorsDir(dir, model(), { maxShardBytes: 500 });
    // 400 | 240 | 400+64+8: shards close when the next tensor would overflow
    const shardNames = [1, 2, 3].map((i) => `model-0000${i}-of-00003.safetensors`);
    expect(res.sharded).toBe(true);
    expect(res.files).toEqual([...shardNames, SAFETENSORS_INDEX_NAME].map((f) => join(dir, f)));
    const index = JSON.parse(await fsp.readFile(join(dir, SAFETENSORS_INDEX_NAME), 'utf8'));
    expect(index).toEqual({
      metadata: { total_size: 400 + 240 + 400 + 64 + 8 },
      weight_map: {
        'model.embed_tokens.weight': shardNames[0],
        'model.layers.0.self_attn.q_proj.weight': shardNames[1],
        'model.layers.1.mlp.up_proj.weight': shardNames[2],
        'model.norm.weight': shardNames[2],
        position_ids: shardNames[2],
      },
    });
    expect(Object.keys(index.weight_map)).toEqual(Object.keys(index.weight_map).sort());
    expect([...(await readSafetensors(join(dir, shardNames[2]!))).tensors.keys()].sort()).toEqual([
      'model.layers.1.mlp.up_proj.weight',
      'model.norm.weight',
      'position_ids',
    ]);
    const back = await readSafetensorsDir(dir);
    expect(back.sharded).toBe(true);
    expect(back.files).toEqual(shardNames.map((f) => join(dir, f)));
    expect(back.tensors.size).toBe(5);
    for (const [name, t] of model()) expect(back.tensors.get(name)).toEqual(t);
    expect(back.storedDtypes.get('model.norm.weight')).toBe('F32');
  });

  it('a tensor larger than maxShardBytes gets a shard of its own', async () => {
    const dir = await fresh();
    const res = await writeSafetensorsDir(dir, model(), { maxShardBytes: 100 });
    // 400 | 240 | 400 | 64+8: the three big tensors each alone, the two small ones together
    expect(res.files).toHaveLength(4 + 1);
    expect(res.files[0]).toBe(join(dir, 'model-00001-of-00004.safetensors'));
  });

  it.each(['F16', 'BF16'] as const)('writes float32 as %s (sharded), reads back widened', async (dtype) => {
    const dir = await fresh();
    await writeSafetensorsDir(dir, model(), { maxShardBytes: 250, dtype });
    const index = JSON.parse(await fsp.readFile(join(dir, SAFETENSORS_INDEX_NAME), 'utf8'));
    expect(index.metadata.total_size).toBe((100 + 60 + 100 + 16) * 2 + 8);
    const back = await readSafetensorsDir(dir);
    expect(back.storedDtypes.get('model.embed_tokens.weight')).toBe(dtype);
    expect(back.storedDtypes.get('position_ids')).toBe('I32');
    const orig = model().get('model.layers.0.self_attn.q_proj.weight')!.data as Float32Array;
    const got = back.tensors.get('model.layers.0.self_attn.q_proj.weight')!.data;
    const tol = dtype === 'F16' ? 2 ** -11 : 2 ** -8; // half a unit in the last place, relative
    for (let i = 0; i < orig.length; i++) {
      expect(Math.abs(got[i]! - orig[i]!)).toBeLessThanOrEqual(tol * Math.abs(orig[i]!));
    }
    if (dtype === 'BF16') expect(got[1]).toBe(bfloat16ToFloat32(float32ToBfloat16Bits(orig[1]!)));
    else expect(float16ToFloat32(0x3c00)).toBe(1);
  });

  it('reads only the requested tensors, from the shards that hold them', async () => {
    const dir = await fresh();
    await writeSafetensorsDir(dir, model(), { maxShardBytes: 500 });
    const back = await readSafetensorsDir(dir, { names: ['model.norm.weight'] });
    expect([...back.tensors.keys()]).toEqual(['model.norm.weight']);
    expect(back.files).toEqual([join(dir, 'model-00003-of-00003.safetensors')]);
  });

  it('prefers model.safetensors over an index, as transformers does', async () => {
    const dir = await fresh();
    await writeSafetensorsDir(dir, model(), { maxShardBytes: 500 });
    await fsp.rm(join(dir, 'model-00001-of-00003.safetensors'));
    await writeSafetensors(join(dir, SAFETENSORS_WEIGHTS_NAME), { x: f32([1], 1) });
    expect([...(await readSafetensorsDir(dir)).tensors.keys()]).toEqual(['x']);
  });
});

describe('readSafetensorsDir / writeSafetensorsDir errors name the file, the tensor and the fix', () => {
  it('a folder without weights', async () => {
    const dir = await fresh();
    await expect(readSafetensorsDir(dir)).rejects.toThrow(
      new RegExp(`${dir}: no model.safetensors or model.safetensors.index.json.*safe_serialization=True`),
    );
  });

  it('a missing shard', async () => {
    const dir = await fresh();
    await writeSafetensorsDir(dir, model(), { maxShardBytes: 500 });
    await fsp.rm(join(dir, 'model-00002-of-00003.safetensors'));
    await expect(readSafetensorsDir(dir)).rejects.toThrow(
      /model\.safetensors\.index\.json: "weight_map" puts 1 tensor\(s\) \(e\.g\. "model\.layers\.0\.self_attn\.q_proj\.weight"\) in .*model-00002-of-00003\.safetensors, which does not exist: the download is incomplete; download that shard again/,
    );
  });

  it('an index that points to a tensor its shard lacks', async () => {
    const dir = await fresh();
    await writeSafetensorsDir(dir, model(), { maxShardBytes: 500 });
    const indexPath = join(dir, SAFETENSORS_INDEX_NAME);
    const index = JSON.parse(await fsp.readFile(indexPath, 'utf8'));
    index.weight_map['lm_head.weight'] = 'model-00001-of-00003.safetensors';
    await fsp.writeFile(indexPath, JSON.stringify(index));
    await expect(readSafetensorsDir(dir)).rejects.toThrow(
      /"weight_map" says tensor "lm_head\.weight" is in .*model-00001-of-00003\.safetensors, but that shard does not hold it.*download the model again/,
    );
  });

  it('a damaged index, a shard path outside the folder, a name not in the index', async () => {
    const dir = await fresh();
    await writeSafetensorsDir(dir, model(), { maxShardBytes: 500 });
    const indexPath = join(dir, SAFETENSORS_INDEX_NAME);
    await fsp.writeFile(indexPath, JSON.stringify({ metadata: {} }));
    await expect(readSafetensorsDir(dir)).rejects.toThrow(/index\.json: "weight_map" must be an object/);
    await fsp.writeFile(indexPath, JSON.stringify({ weight_map: { a: '../x.safetensors' } }));
    await expect(readSafetensorsDir(dir)).rejects.toThrow(
      /entry for tensor "a" is "\.\.\/x\.safetensors"; it must be a shard file name inside the model folder/,
    );
    await fsp.writeFile(indexPath, '{"weight_map": ');
    await expect(readSafetensorsDir(dir)).rejects.toThrow(/index\.json: cannot read the safetensors index/);
    await fsp.writeFile(indexPath, JSON.stringify({ weight_map: { a: 'model-00001-of-00003.safetensors' } }));
    await expect(readSafetensorsDir(dir, { names: ['b'] })).rejects.toThrow(
      /index\.json: tensor "b" is not in "weight_map"/,
    );
  });

  it('an unsupported dtype in a shard, before reading any data', async () => {
    const dir = await fresh();
    const header = JSON.stringify({ w: { dtype: 'F8_E4M3', shape: [2], data_offsets: [0, 2] } });
    const bytes = new Uint8Array(8 + header.length + 2);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(header.length), true);
    bytes.set(new TextEncoder().encode(header), 8);
    await fsp.writeFile(join(dir, 'model-00001-of-00001.safetensors'), bytes);
    await fsp.writeFile(
      join(dir, SAFETENSORS_INDEX_NAME),
      JSON.stringify({ weight_map: { w: 'model-00001-of-00001.safetensors' } }),
    );
    await expect(readSafetensorsDir(dir)).rejects.toThrow(
      /model-00001-of-00001\.safetensors: tensor "w": unknown or unsupported dtype "F8_E4M3"; supported: F64, F32, F16, BF16/,
    );
  });

  it('weights larger than maxBytes are refused from the headers, naming the largest tensor', async () => {
    const dir = await fresh();
    await writeSafetensorsDir(dir, model(), { maxShardBytes: 500, dtype: 'BF16' });
    // stored as BF16 (556 bytes) but 1112 bytes as float32 in memory
    await expect(readSafetensorsDir(dir, { maxBytes: 1000 })).rejects.toThrow(
      /the weights need 1112 bytes as float32, more than maxBytes \(1000 bytes\); the largest tensor is "model\.embed_tokens\.weight"/,
    );
    expect((await readSafetensorsDir(dir, { maxBytes: 1112 })).tensors.size).toBe(5);
  });

  it('sharding into a folder that holds model.safetensors is refused (it would shadow the shards)', async () => {
    const dir = await fresh();
    await writeSafetensorsDir(dir, model());
    await expect(writeSafetensorsDir(dir, model(), { maxShardBytes: 500 })).rejects.toThrow(
      /model\.safetensors exists and would be loaded instead of the new shards; remove it or save into an empty folder/,
    );
    await expect(writeSafetensorsDir(dir, model(), { maxShardBytes: 0 })).rejects.toThrow(
      /maxShardBytes must be > 0/,
    );
  });
});
