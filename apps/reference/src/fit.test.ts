import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { attachLora, CausalLM, resolveModelConfig } from '@relign/lm';
import { useBackend } from '@relign/tensor/testing';
import { main } from './cli/main.js';
import { fitRow, fitRowsFor, formatFitTable, KNOWN_MODELS, loraParameterCount } from './fit.js';
import { Progress } from './progress.js';

const rows = () => Object.entries(KNOWN_MODELS).map(([n, c]) => fitRow(n, c));

describe('what fits where', () => {
  it('counts the parameters the model cards publish (from the config shapes)', () => {
    const p = Object.fromEntries(rows().map((r) => [r.name, r.params]));
    expect(p['HuggingFaceTB/SmolLM2-135M-Instruct']).toBe(134_515_008);
    expect(p['Qwen/Qwen2.5-0.5B-Instruct']).toBe(494_032_768);
    expect(p['meta-llama/Llama-3.2-1B-Instruct']).toBe(1_235_814_400);
    // PEFT's print_trainable_parameters for SmolLM2-135M, r 16 on all seven projections.
    expect(rows()[0]!.loraParams).toBe(4_884_480);
  });

  it("counts LoRA parameters as attachLora's default targets create them", async () => {
    await useBackend('cpu');
    const shapes: Record<string, unknown>[] = [
      { vocab_size: 11, n_positions: 8, n_embd: 8, n_layer: 2, n_head: 2 },
      {
        model_type: 'qwen3',
        vocab_size: 11,
        hidden_size: 8,
        intermediate_size: 12,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        head_dim: 6,
        max_position_embeddings: 16,
      },
    ];
    for (const shape of shapes) {
      const model = CausalLM.create(shape as never, 1);
      const adapter = attachLora(model, { r: 3 });
      const made = [...adapter.variables().values()].reduce((a, v) => a + v.size, 0);
      expect(loraParameterCount(resolveModelConfig(shape), 3)).toBe(made);
      adapter.dispose();
      model.dispose();
    }
  });

  it('sorts the models: 135M trains fully on wasm, 0.5B with LoRA, 1B and up need WebGPU', () => {
    expect(rows().map((r) => r.verdict)).toEqual([
      'wasm: full',
      'wasm: LoRA only',
      'WebGPU',
      'WebGPU',
      'WebGPU',
    ]);
  });

  it("the root README's table is the computed one", () => {
    const readme = readFileSync(join(import.meta.dirname, '../../../README.md'), 'utf8');
    // Cells compared trimmed, so prettier's column alignment does not matter.
    const cells = (text: string) =>
      text
        .split('\n')
        .map((l) =>
          l
            .split('|')
            .map((c) => c.trim().replace(/^-+(:?)$/, '-$1'))
            .join('|'),
        )
        .join('\n');
    expect(cells(readme)).toContain(cells(formatFitTable(rows())));
  });

  it('relign doctor --fit prints a known id or a config.json, and names what it accepts', async () => {
    const out: string[] = [];
    const run = (argv: string[]) =>
      main(argv, {
        progress: new Progress({ write: (t) => void out.push(t), isTTY: false }),
        initBackend: false,
        print: (t) => void out.push(t + '\n'),
      });
    expect(await run(['doctor', '--fit', 'Qwen/Qwen3-1.7B'])).toBe(0);
    expect(out.join('')).toMatch(/\| Qwen\/Qwen3-1\.7B \| 1\.72B \|.*WebGPU/);
    await expect(fitRowsFor('nobody/nothing')).rejects.toThrow(
      /nobody\/nothing is neither a file nor a folder nor a known Hub id/,
    );
  });
});
