/**
 * Bring your own model: `--model.base` as a random tiny Llama folder with a tokenizer.json (that also ships a
 * decoy GPT-2 vocab.json + merges.txt, as Qwen folders do), the same folder as a Hub id served by a fake Hub on
 * 127.0.0.1, and a LoRA RL run that leaves the base weights unchanged and writes a PEFT adapter.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bytesToUnicode, CausalLM, HfTokenizer, loadTokenizer, saveTokenizer } from '@relign/lm';
import { RewardModel } from '@relign/reward-model';
import { useBackend } from '@relign/tensor/testing';
// The Hub stand-in of @relign/lm's own tests (test-only, not exported by the package).
import { startFakeHub, type FakeHub } from '../../../packages/lm/src/hub/fake-hub.js';
import { main } from './cli/main.js';
import { Progress } from './progress.js';
import { GPU_BASE_MODEL } from './config/presets.js';
import { baseModelProblem, resolveBaseModelDir } from './model-source.js';
import { loadModelDir } from './task/models.js';

const EOT = 256; // <|endoftext|>: pad
const IM_END = 257; // <|im_end|>: the chat model's EOS

/** A byte-level BPE tokenizer.json: the 256 GPT-2 byte symbols, two merges and two special tokens. */
function tokenizerJson(): string {
  const bu = bytesToUnicode();
  const vocab: Record<string, number> = {};
  bu.forEach((ch, b) => (vocab[ch] = b));
  vocab['<|endoftext|>'] = EOT;
  vocab['<|im_end|>'] = IM_END;
  vocab['th'] = 258;
  vocab['Ġt'] = 259;
  const special = (id: number, content: string) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  return JSON.stringify({
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special(EOT, '<|endoftext|>'), special(IM_END, '<|im_end|>')],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: ['t h', 'Ġ t'],
    },
  });
}

/** A random 2-layer Llama checkpoint folder in the Hugging Face layout. */
async function writeTinyLlama(dir: string, modelType: 'llama' | 'qwen2' = 'llama'): Promise<void> {
  const model = CausalLM.create(
    {
      model_type: modelType,
      vocab_size: 264,
      hidden_size: 16,
      intermediate_size: 24,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      head_dim: 4,
      max_position_embeddings: 128,
      eos_token_id: IM_END,
    },
    'byom',
  );
  await model.save(dir);
  model.dispose();
  await writeFile(join(dir, 'tokenizer.json'), tokenizerJson());
  await writeFile(
    join(dir, 'tokenizer_config.json'),
    JSON.stringify({
      eos_token: '<|im_end|>',
      pad_token: '<|endoftext|>',
      chat_template: '{% for m in messages %}{{ m.role }}: {{ m.content }}<|im_end|>{% endfor %}',
    }),
  );
  await writeFile(join(dir, 'generation_config.json'), JSON.stringify({ eos_token_id: [IM_END, EOT] }));
  // Decoys: a folder that ships both must load tokenizer.json, not these (as GPT-2 they would mis-tokenize).
  await writeFile(join(dir, 'vocab.json'), JSON.stringify({ a: 0, b: 1 }));
  await writeFile(join(dir, 'merges.txt'), '#version: 0.2\na b\n');
}

async function relign(argv: string[]): Promise<{ code: number; text: string }> {
  const out: string[] = [];
  const write = (t: string) => void out.push(t);
  const code = await main(argv, {
    progress: new Progress({ write, isTTY: false }),
    initBackend: false,
    print: (t) => write(t + '\n'),
  });
  return { code, text: out.join('') };
}

describe('bring your own model', () => {
  const root = mkdtempSync(join(tmpdir(), 'relign-byom-'));
  const modelDir = join(root, 'tiny-llama');
  const saved: Record<string, string | undefined> = {};
  let hub: FakeHub | undefined;

  beforeAll(async () => {
    await useBackend('cpu');
    await mkdir(modelDir);
    await writeTinyLlama(modelDir);
    for (const k of ['HF_HOME', 'HF_HUB_CACHE', 'HF_ENDPOINT', 'HF_HUB_OFFLINE', 'HF_TOKEN']) {
      saved[k] = process.env[k];
      delete process.env[k];
    }
  });
  afterAll(async () => {
    await hub?.close();
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    rmSync(root, { recursive: true, force: true });
  });

  it('sft starts from a Llama folder with its tokenizer.json and saves both back', async () => {
    const runDir = join(root, 'run-dir');
    const r = await relign([
      'sft',
      '--preset',
      'tiny',
      '--run-dir',
      runDir,
      '--model.base',
      modelDir,
      '--sft.steps',
      '2',
    ]);
    expect(r.code, r.text).toBe(0);
    expect(r.text).toContain(`starting model: ${modelDir}`);
    const sft = await loadModelDir(join(runDir, 'sft'), { trainable: false });
    try {
      expect(sft.tokenizer).toBeInstanceOf(HfTokenizer);
      expect((sft.tokenizer as HfTokenizer).stopIds).toEqual([IM_END, EOT]);
      expect(sft.tokenizer.padId).toBe(EOT);
      expect(sft.tokenizer.encode('the')).toEqual([258, 'e'.charCodeAt(0)]);
      expect(sft.model.configJSON().model_type).toBe('llama');
    } finally {
      sft.model.dispose();
    }
    // The folder's own tokenizer, not the decoy vocab.json + merges.txt.
    expect(await loadTokenizer(join(runDir, 'sft'))).toBeInstanceOf(HfTokenizer);
  }, 120_000);

  it('loads a Qwen2 folder (tokenizer.json over its vocab.json + merges.txt) and checks folders before work', async () => {
    const qwen = join(root, 'tiny-qwen2');
    await mkdir(qwen);
    await writeTinyLlama(qwen, 'qwen2');
    const m = await loadModelDir(await resolveBaseModelDir(qwen), { trainable: false });
    try {
      expect(m.model.configJSON().model_type).toBe('qwen2');
      expect(m.tokenizer).toBeInstanceOf(HfTokenizer);
    } finally {
      m.model.dispose();
    }
    expect(baseModelProblem(qwen)).toBeUndefined();
    expect(baseModelProblem('some-org/some-model')).toBeUndefined(); // a Hub id: resolved by the stage
    expect(baseModelProblem(join(root, 'nowhere'))).toMatch(/nowhere does not exist and is not a Hub id/);
    expect(baseModelProblem(root)).toMatch(/lacks config\.json, model\.safetensors, tokenizer\.json/);
  });

  it('sft with lora.enabled writes the base weights unchanged and a PEFT adapter in sft/adapter/', async () => {
    const runDir = join(root, 'run-lora-sft');
    const r = await relign([
      'sft',
      '--preset',
      'tiny',
      '--run-dir',
      runDir,
      '--model.base',
      modelDir,
      '--sft.steps',
      '2',
      '--lora.enabled',
      'true',
      '--lora.targetModules',
      'q_proj,v_proj',
    ]);
    expect(r.code, r.text).toBe(0);
    const sftDir = join(runDir, 'sft');
    expect(
      readFileSync(join(sftDir, 'model.safetensors')).equals(
        readFileSync(join(modelDir, 'model.safetensors')),
      ),
    ).toBe(true);
    const adapterConfig = JSON.parse(readFileSync(join(sftDir, 'adapter', 'adapter_config.json'), 'utf8'));
    expect([...adapterConfig.target_modules].sort()).toEqual(['q_proj', 'v_proj']);
  }, 120_000);

  it('resolves a Hub id at a revision through the Hub client (fake Hub on 127.0.0.1) into HF_HOME', async () => {
    const sha = 'a'.repeat(40);
    const files = await Promise.all(
      (await readdir(modelDir)).map(async (path) => ({
        path,
        content: new Uint8Array(await readFile(join(modelDir, path))),
        lfs: path.endsWith('.safetensors'),
      })),
    );
    hub = await startFakeHub([{ id: 'test-org/tiny-llama', sha, files }]);
    process.env.HF_HOME = join(root, 'hf-home');
    process.env.HF_ENDPOINT = hub.url;
    const runDir = join(root, 'run-hub');
    const argv = ['sft', '--preset', 'tiny', '--run-dir', runDir, '--model.base', 'test-org/tiny-llama'];
    const r = await relign([...argv, '--model.revision', sha, '--sft.steps', '1']);
    expect(r.code, r.text).toBe(0);
    expect(hub.requests.some((q) => q.url.includes(`/revision/${sha}`))).toBe(true);
    const snapshot = join(root, 'hf-home', 'hub', 'models--test-org--tiny-llama', 'snapshots', sha);
    expect(r.text).toContain(snapshot);
    expect(readFileSync(join(snapshot, 'tokenizer.json'), 'utf8')).toBe(tokenizerJson());
    // An unknown id names model.base and the fix.
    const bad = await relign([...argv.slice(0, -1), 'test-org/missing', '--sft.steps', '1']);
    expect(bad.code).not.toBe(0);
    expect(bad.text).toMatch(/model\.base: .*test-org\/missing.*not found/);
  }, 120_000);

  it('the gpu preset resolves its Hub model (published on a fake Hub) and runs a short LoRA sft', async () => {
    const files = await Promise.all(
      (await readdir(modelDir)).map(async (path) => ({
        path,
        content: new Uint8Array(await readFile(join(modelDir, path))),
        lfs: path.endsWith('.safetensors'),
      })),
    );
    const gpuHub = await startFakeHub([{ id: GPU_BASE_MODEL, sha: 'b'.repeat(40), files }]);
    try {
      process.env.HF_HOME = join(root, 'hf-home-gpu');
      process.env.HF_ENDPOINT = gpuHub.url;
      const runDir = join(root, 'run-gpu');
      const r = await relign(
        ['sft', '--preset', 'gpu', '--run-dir', runDir, '--sft.steps', '1', '--sft.batchSize', '2'].concat([
          '--sft.evalEvery',
          '1',
          '--sft.checkpointEvery',
          '1',
          '--backend',
          'cpu',
        ]),
      );
      expect(r.code, r.text).toBe(0);
      expect(r.text).toContain(join('models--HuggingFaceTB--SmolLM2-135M-Instruct', 'snapshots'));
      const adapterConfig = JSON.parse(
        readFileSync(join(runDir, 'sft', 'adapter', 'adapter_config.json'), 'utf8'),
      );
      expect(adapterConfig).toMatchObject({ peft_type: 'LORA', r: 16, lora_alpha: 32 });
    } finally {
      await gpuHub.close();
    }
  }, 240_000);

  it('lora.enabled: the RL policy trains adapters only; final/ keeps the base weights and adds adapter/', async () => {
    const runDir = join(root, 'run-dir');
    // The run's reward model on the SFT backbone (untrained: plumbing only), as the reward stage leaves it.
    const sft = await loadModelDir(join(runDir, 'sft'), { trainable: true });
    const rm = RewardModel.fromBackbone(sft.model, { tokenizer: sft.tokenizer, seed: 'byom/reward' });
    await rm.save(join(runDir, 'reward'));
    await saveTokenizer(sft.tokenizer, join(runDir, 'reward'));
    rm.dispose();
    const r = await relign([
      'train',
      '--preset',
      'tiny',
      '--run-dir',
      runDir,
      '--model.base',
      modelDir,
      '--algo',
      'p3o-v2',
      '--train.iterations',
      '2',
      '--lora.enabled',
      'true',
      '--lora.r',
      '2',
    ]);
    expect(r.code, r.text).toBe(0);
    const final = join(runDir, 'train', 'p3o-v2', 'final');
    // The base (SFT) weights byte for byte: only the adapter trained.
    expect(
      readFileSync(join(final, 'model.safetensors')).equals(
        readFileSync(join(runDir, 'sft', 'model.safetensors')),
      ),
    ).toBe(true);
    const adapterConfig = JSON.parse(readFileSync(join(final, 'adapter', 'adapter_config.json'), 'utf8'));
    expect(adapterConfig).toMatchObject({ peft_type: 'LORA', r: 2 });
    expect(readFileSync(join(final, 'adapter', 'adapter_model.safetensors')).length).toBeGreaterThan(0);
    // Loading the policy folder merges the adapter: the trained policy differs from the SFT weights.
    const policy = await loadModelDir(final, { trainable: false });
    const base = await loadModelDir(join(runDir, 'sft'), { trainable: false });
    try {
      const a = await policy.model.tensors();
      const b = await base.model.tensors();
      const changed = [...a].some(([name, t]) => t.data.some((x, i) => x !== b.get(name)!.data[i]));
      expect(changed).toBe(true);
    } finally {
      policy.model.dispose();
      base.model.dispose();
    }
  }, 240_000);
});
