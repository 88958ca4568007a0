import {
  readSafetensorsDir,
  serializeSafetensors,
  writeSafetensorsDir,
  type TensorData,
} from '@relign/tensor';
import fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { gitBlobSha1, sha256, startFakeHub, type FakeFile, type FakeHub } from './fake-hub.js';
import type { DownloadProgress } from './progress.js';
import { resolveModelDir } from './resolve.js';

const SHA = '0123456789abcdef0123456789abcdef01234567';
const GATED_SHA = 'fedcba9876543210fedcba9876543210fedcba98';
const ENV_KEYS = [
  'HF_HOME',
  'HF_HUB_CACHE',
  'HUGGINGFACE_HUB_CACHE',
  'XDG_CACHE_HOME',
  'HF_TOKEN',
  'HUGGING_FACE_HUB_TOKEN',
  'HF_TOKEN_PATH',
  'HF_HUB_OFFLINE',
  'HF_ENDPOINT',
  'HF_HUB_DISABLE_PROGRESS_BARS',
] as const;

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
let root: string;
let weights: Map<string, TensorData>;
let tiny: FakeFile[];
let hub: FakeHub;
let home: string;
const saved: Record<string, string | undefined> = {};

beforeAll(async () => {
  root = await fsp.mkdtemp(join(tmpdir(), 'relign-hub-'));
  weights = new Map<string, TensorData>([
    [
      'model.embed_tokens.weight',
      { dtype: 'float32', shape: [8, 16], data: Float32Array.from({ length: 128 }, (_, i) => i / 7) },
    ],
    [
      'model.norm.weight',
      { dtype: 'float32', shape: [16], data: Float32Array.from({ length: 16 }, (_, i) => 1 - i / 32) },
    ],
  ]);
  const src = join(root, 'src');
  await writeSafetensorsDir(src, weights, { maxShardBytes: 200, dtype: 'BF16' });
  const read = async (f: string): Promise<Uint8Array> => new Uint8Array(await fsp.readFile(join(src, f)));
  tiny = [
    { path: 'config.json', content: text('{"model_type": "llama", "hidden_size": 16}\n') },
    { path: 'generation_config.json', content: text('{"eos_token_id": 2}\n') },
    { path: 'tokenizer.json', content: text('{"model": {"type": "BPE"}}\n') },
    { path: 'README.md', content: text('# tiny\n') },
    { path: 'pytorch_model.bin', content: new Uint8Array(64), lfs: true },
    { path: 'model.safetensors.index.json', content: await read('model.safetensors.index.json') },
    {
      path: 'model-00001-of-00002.safetensors',
      content: await read('model-00001-of-00002.safetensors'),
      lfs: true,
    },
    {
      path: 'model-00002-of-00002.safetensors',
      content: await read('model-00002-of-00002.safetensors'),
      lfs: true,
    },
  ];
});
afterAll(async () => {
  await fsp.rm(root, { recursive: true, force: true });
});

beforeEach(async () => {
  for (const k of ENV_KEYS) {
    saved[k] = process.env[k];
    delete process.env[k];
  }
  home = await fsp.mkdtemp(join(root, 'hf-home-'));
  process.env.HF_HOME = home;
  hub = await startFakeHub([
    { id: 'org/tiny', sha: SHA, files: tiny },
    {
      id: 'org/gated',
      sha: GATED_SHA,
      gated: true,
      files: [
        { path: 'config.json', content: text('{}') },
        { path: 'model.safetensors', content: serializeSafetensors(weights), lfs: true },
      ],
    },
    { id: 'org/bin-only', sha: SHA, files: [tiny[0]!, tiny[4]!] },
    {
      id: 'org/evil',
      sha: SHA,
      files: [
        tiny[0]!,
        {
          path: 'model.safetensors.index.json',
          content: text('{"weight_map": {"w": "../../../evil.safetensors"}}'),
        },
      ],
    },
  ]);
});
afterEach(async () => {
  await hub.close();
  for (const k of ENV_KEYS) {
    if (saved[k] === undefined) delete process.env[k];
    else process.env[k] = saved[k];
  }
});

const repoDir = (): string => join(home, 'hub', 'models--org--tiny');
const resolves = (): string[] => hub.requests.filter((r) => r.url.includes('/resolve/')).map((r) => r.url);

describe('resolveModelDir: downloads from a Hub', () => {
  it('fills the standard cache layout (blobs by etag, relative snapshot links, refs/main) with the model files only', async () => {
    const events: DownloadProgress[] = [];
    const dir = await resolveModelDir('org/tiny', {
      endpoint: hub.url,
      onProgress: (p) => events.push({ ...p }),
    });
    expect(dir).toBe(join(repoDir(), 'snapshots', SHA));
    expect(await fsp.readFile(join(repoDir(), 'refs', 'main'), 'utf8')).toBe(SHA);
    expect((await fsp.readdir(dir)).sort()).toEqual([
      'config.json',
      'generation_config.json',
      'model-00001-of-00002.safetensors',
      'model-00002-of-00002.safetensors',
      'model.safetensors.index.json',
      'tokenizer.json',
    ]);
    const byPath = new Map(tiny.map((f) => [f.path, f]));
    expect(await fsp.readlink(join(dir, 'config.json'))).toBe(
      join('..', '..', 'blobs', gitBlobSha1(byPath.get('config.json')!.content)),
    );
    const shard = byPath.get('model-00002-of-00002.safetensors')!;
    expect(await fsp.readlink(join(dir, shard.path))).toBe(join('..', '..', 'blobs', sha256(shard.content)));
    expect((await fsp.readdir(join(repoDir(), 'blobs'))).filter((b) => b.endsWith('.incomplete'))).toEqual(
      [],
    );
    expect(resolves().every((u) => u.includes(`/resolve/${SHA}/`))).toBe(true);
    expect(hub.requests.every((r) => r.authorization === undefined)).toBe(true);

    const back = await readSafetensorsDir(dir);
    expect(back.storedDtypes.get('model.norm.weight')).toBe('BF16');
    expect([...back.tensors.keys()].sort()).toEqual([...weights.keys()].sort());

    const last = new Map(events.map((e) => [e.file, e]));
    expect(last.size).toBe(6);
    for (const e of last.values())
      expect(e).toMatchObject({
        repo: 'org/tiny',
        done: true,
        downloaded: byPath.get(e.file)!.content.length,
      });
  });

  it('does not download cached files again; offline (option or HF_HUB_OFFLINE) it loads from the cache with the Hub gone', async () => {
    process.env.HF_ENDPOINT = hub.url; // the endpoint may come from the environment
    const dir = await resolveModelDir('org/tiny', { onProgress: false });
    const n = resolves().length;
    expect(await resolveModelDir('org/tiny', { onProgress: false })).toBe(dir);
    expect(resolves().length).toBe(n);
    await hub.close();
    expect(await resolveModelDir('org/tiny', { offline: true })).toBe(dir);
    process.env.HF_HUB_OFFLINE = '1';
    expect(await resolveModelDir('org/tiny')).toBe(dir);
    expect(await resolveModelDir('org/tiny', { revision: SHA })).toBe(dir);
    await expect(resolveModelDir('org/tiny', { revision: 'v2' })).rejects.toThrow(
      /org\/tiny@v2 on http:\/\/127\.0\.0\.1:\d+: offline mode is on .*not in the cache at .*hub; run once with network access \(unset HF_HUB_OFFLINE\)/,
    );
    await expect(resolveModelDir('org/other')).rejects.toThrow(/^org\/other on .*: offline mode is on/);
    // Online with the Hub unreachable: the cache is used too.
    delete process.env.HF_HUB_OFFLINE;
    expect(await resolveModelDir('org/tiny', { onProgress: false })).toBe(dir);
    await expect(resolveModelDir('org/other', { onProgress: false })).rejects.toThrow(
      /org\/other on .*: cannot reach http:\/\/127\.0\.0\.1:\d+ .*set HF_HUB_OFFLINE=1/,
    );
  });

  it('HF_HUB_CACHE overrides HF_HOME; the cacheDir option overrides both', async () => {
    process.env.HF_HUB_CACHE = join(home, 'alt');
    const dir = await resolveModelDir('org/tiny', {
      endpoint: hub.url,
      files: ['config.json'],
      onProgress: false,
    });
    expect(dir).toBe(join(home, 'alt', 'models--org--tiny', 'snapshots', SHA));
    const opt = join(home, 'opt');
    expect(
      await resolveModelDir('org/tiny', { endpoint: hub.url, cacheDir: opt, files: ['config.json'] }),
    ).toBe(join(opt, 'models--org--tiny', 'snapshots', SHA));
  });

  it('an offline snapshot missing a shard is refused, naming the shard', async () => {
    const dir = await resolveModelDir('org/tiny', { endpoint: hub.url, onProgress: false });
    await fsp.rm(join(dir, 'model-00002-of-00002.safetensors'));
    await expect(resolveModelDir('org/tiny', { offline: true })).rejects.toThrow(
      /lacks model-00002-of-00002\.safetensors \(an interrupted download\)/,
    );
  });

  it('sends HF_TOKEN as a Bearer token; a gated repo without it is a 401 that says to set HF_TOKEN', async () => {
    await expect(resolveModelDir('org/gated', { endpoint: hub.url, onProgress: false })).rejects.toThrow(
      /^org\/gated on http:\/\/127\.0\.0\.1:\d+: HTTP 401 \(Access to model org\/gated is restricted.*\); it is gated or private .*set HF_TOKEN to a read token/,
    );
    process.env.HF_TOKEN = 'hf_wrong';
    await expect(resolveModelDir('org/gated', { endpoint: hub.url, onProgress: false })).rejects.toThrow(
      /HTTP 401 .*the token from HF_TOKEN was refused or lacks access/,
    );
    process.env.HF_TOKEN = 'hf_test_token';
    hub.requests.length = 0;
    const dir = await resolveModelDir('org/gated', { endpoint: hub.url, onProgress: false });
    expect(await fsp.readdir(dir)).toEqual(['config.json', 'model.safetensors']);
    expect(hub.requests.length).toBe(1 + 1 + 2); // info, paths-info, two files
    for (const r of hub.requests) expect(r.authorization).toBe('Bearer hf_test_token');
    process.env.HF_TOKEN = 'not-a-token';
    await expect(resolveModelDir('org/gated', { endpoint: hub.url })).rejects.toThrow(
      /token from HF_TOKEN does not start with "hf_"/,
    );
  });

  it('an unknown repo or revision names the repo; a repo without safetensors says how to convert', async () => {
    await expect(resolveModelDir('org/nope', { endpoint: hub.url, onProgress: false })).rejects.toThrow(
      /^org\/nope on .*: not found \(HTTP 404: Repository not found\); check the model id and revision "main"/,
    );
    await expect(
      resolveModelDir('org/tiny', { endpoint: hub.url, revision: 'v9', onProgress: false }),
    ).rejects.toThrow(/^org\/tiny@v9 on .*: not found/);
    await expect(resolveModelDir('org/bin-only', { endpoint: hub.url, onProgress: false })).rejects.toThrow(
      /org\/bin-only on .*: the repo has no safetensors weights .*only has pytorch_model\.bin: convert it with transformers' save_pretrained\(safe_serialization=True\)/,
    );
    await expect(resolveModelDir('org/evil', { endpoint: hub.url, onProgress: false })).rejects.toThrow(
      /org\/evil on .*: model\.safetensors\.index\.json names the shard "\.\.\/\.\.\/\.\.\/evil\.safetensors", outside the repo/,
    );
  });

  it('files: fetches just the files asked for (no model files required)', async () => {
    const dir = await resolveModelDir('org/bin-only', {
      endpoint: hub.url,
      files: ['config.json', 'nope.txt'],
      onProgress: false,
    });
    expect(await fsp.readdir(dir)).toEqual(['config.json']);
  });

  it('resumes a transfer the server cut off mid-file, with a Range request', async () => {
    const shard = tiny.find((f) => f.path === 'model-00001-of-00002.safetensors')!;
    hub.dropOnce.add(shard.path);
    const dir = await resolveModelDir('org/tiny', { endpoint: hub.url, onProgress: false });
    expect(new Uint8Array(await fsp.readFile(join(dir, shard.path)))).toEqual(shard.content);
    const gets = hub.requests.filter((r) => r.url.endsWith(shard.path));
    expect(gets.map((r) => r.range)).toEqual([undefined, `bytes=${shard.content.length >> 1}-`]);
  });

  it('resumes a partial file left by an earlier run, and discards one whose checksum is wrong', async () => {
    const shard = tiny.find((f) => f.path === 'model-00002-of-00002.safetensors')!;
    const blob = join(repoDir(), 'blobs', sha256(shard.content));
    await fsp.mkdir(join(repoDir(), 'blobs'), { recursive: true });
    await fsp.writeFile(`${blob}.incomplete`, shard.content.subarray(0, 100));
    const dir = await resolveModelDir('org/tiny', { endpoint: hub.url, onProgress: false });
    expect(hub.requests.filter((r) => r.url.endsWith(shard.path)).map((r) => r.range)).toEqual([
      'bytes=100-',
    ]);
    expect(new Uint8Array(await fsp.readFile(join(dir, shard.path)))).toEqual(shard.content);

    await fsp.rm(blob);
    await fsp.writeFile(`${blob}.incomplete`, new Uint8Array(100).fill(7));
    await expect(resolveModelDir('org/tiny', { endpoint: hub.url, onProgress: false })).rejects.toThrow(
      new RegExp(
        `model-00002-of-00002\\.safetensors: the downloaded file's checksum is [0-9a-f]{64}, not ${sha256(shard.content)}`,
      ),
    );
    expect(await resolveModelDir('org/tiny', { endpoint: hub.url, onProgress: false })).toBe(dir);
    expect(new Uint8Array(await fsp.readFile(join(dir, shard.path)))).toEqual(shard.content);
  });

  it('returns an existing folder as is; a missing path that is no Hub id is an error', async () => {
    expect(await resolveModelDir(root)).toBe(root);
    await expect(resolveModelDir('./no/such/model')).rejects.toThrow(
      /\.\/no\/such\/model: no such directory, and not a Hub model id/,
    );
    expect(hub.requests).toEqual([]);
  });
});
