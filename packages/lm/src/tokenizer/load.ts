/**
 * Loading a tokenizer folder (Node only: reads files). One entry point for every model relign loads:
 * `tokenizer.json` folders (Llama, Qwen, Gemma, SmolLM2, ...) get an {@link HfTokenizer}; GPT-2-layout folders
 * with only `vocab.json` + `merges.txt` (relign's default model) keep relign's own {@link BpeTokenizer}, which
 * is id-for-id GPT-2 and can be trained and saved.
 */
import { BpeTokenizer } from './bpe-tokenizer.js';
import { HfTokenizer } from './hf-tokenizer.js';
import { nodeFs, nodePath } from '@relign/tensor';

/** A tokenizer that {@link loadTokenizer} returns. Both kinds satisfy `TextTokenizer` (encode, eos/pad/bos ids). */
export type LmTokenizer = BpeTokenizer | HfTokenizer;

/**
 * Loads the tokenizer in `dir`: `tokenizer.json` (+ tokenizer_config.json, config.json, generation_config.json,
 * chat_template.jinja when present) as an {@link HfTokenizer}; otherwise `vocab.json` + `merges.txt` as a
 * {@link BpeTokenizer}.
 * @throws Error naming the folder when it holds neither, or a file cannot be read or parsed.
 */
export async function loadTokenizer(dir: string): Promise<LmTokenizer> {
  if (typeof dir !== 'string' || dir === '') {
    throw new Error('loadTokenizer: dir must be a non-empty directory path.');
  }
  const fs = nodeFs;
  const path = nodePath;
  const read = async (name: string): Promise<string | undefined> => {
    const file = path.join(dir, name);
    try {
      return await fs.readFile(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new Error(`loadTokenizer: cannot read ${file}: ${(e as Error).message}`, { cause: e });
    }
  };
  const tokenizer = await read('tokenizer.json');
  if (tokenizer === undefined) {
    const exists = (name: string) =>
      fs.access(path.join(dir, name)).then(
        () => true,
        () => false,
      );
    const hasBpe = (await exists('vocab.json')) && (await exists('merges.txt'));
    if (!hasBpe) {
      throw new Error(
        `loadTokenizer: ${dir} holds neither tokenizer.json nor vocab.json + merges.txt; point it at a model folder.`,
      );
    }
    return BpeTokenizer.fromDirectory(dir);
  }
  const [tokenizerConfig, modelConfig, generationConfig, chatTemplate] = await Promise.all([
    read('tokenizer_config.json'),
    read('config.json'),
    read('generation_config.json'),
    read('chat_template.jinja'),
  ]);
  return HfTokenizer.fromJSON({
    tokenizer,
    ...(tokenizerConfig !== undefined && { tokenizerConfig }),
    ...(modelConfig !== undefined && { modelConfig }),
    ...(generationConfig !== undefined && { generationConfig }),
    ...(chatTemplate !== undefined && { chatTemplate }),
    source: dir,
  });
}

/**
 * Writes a tokenizer into `dir` (created if needed) in the layout {@link loadTokenizer} reads back:
 * `BpeTokenizer.save` for relign's BPE, {@link HfTokenizer.toFiles} for a Hugging Face tokenizer.
 */
export async function saveTokenizer(tokenizer: LmTokenizer, dir: string): Promise<void> {
  if (tokenizer instanceof BpeTokenizer) return tokenizer.save(dir);
  await nodeFs.mkdir(dir, { recursive: true });
  for (const [name, text] of Object.entries(tokenizer.toFiles())) {
    await nodeFs.writeFile(nodePath.join(dir, name), text, 'utf8');
  }
}
