/**
 * Tokenizers in the Hugging Face `tokenizer.json` format (byte-level BPE as Llama 3 / Qwen, SentencePiece-style
 * BPE with byte fallback as Gemma / Llama 2, added and special tokens), run by `@huggingface/tokenizers`, with
 * the chat template and special-token roles of `tokenizer_config.json`. Browser-safe: built from JSON objects or
 * strings; reading a folder is `loadTokenizer` (load.ts, Node only).
 */
import { Tokenizer } from '@huggingface/tokenizers';
import { renderChatTemplate, type ChatMessage, type ChatTemplateOptions } from './chat-template.js';

type Json = Record<string, unknown>;

/** The files of a Hugging Face tokenizer, each as parsed JSON or as text. */
export interface HfTokenizerFiles {
  /** `tokenizer.json`. */
  tokenizer: Json | string;
  /** `tokenizer_config.json` (special-token roles, `chat_template`). */
  tokenizerConfig?: Json | string;
  /** The model's `config.json`: `bos/eos/pad_token_id` when tokenizer_config.json names none. */
  modelConfig?: Json | string;
  /** `generation_config.json`: its `eos_token_id` (a number or a list) adds stop tokens. */
  generationConfig?: Json | string;
  /** `chat_template.jinja`, which newer `transformers` writes instead of tokenizer_config's `chat_template`. */
  chatTemplate?: string;
  /** Names the source in error messages (e.g. the folder). */
  source?: string;
}

/** Options of {@link HfTokenizer.encode}. */
export interface HfEncodeOptions {
  /** Add what the tokenizer's post-processor adds (Gemma's `<bos>`). Default false, as relign adds BOS itself. */
  addSpecialTokens?: boolean;
}

/** Options of {@link HfTokenizer.decode}. */
export interface HfDecodeOptions {
  /** Leave special tokens out. Default false. */
  skipSpecial?: boolean;
}

function parse(value: Json | string | undefined, name: string, source: string): Json | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') return value;
  try {
    const v = JSON.parse(value) as unknown;
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('not a JSON object');
    return v as Json;
  } catch (e) {
    throw new Error(`HfTokenizer: ${source} ${name} is not valid JSON (${(e as Error).message}).`);
  }
}

/** A token of tokenizer_config.json: a string, `{"content": ...}` (an AddedToken), or null. */
function tokenString(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v !== null && typeof v === 'object' && typeof (v as Json).content === 'string') {
    return (v as Json).content as string;
  }
  return undefined;
}

function idList(v: unknown): number[] {
  const list = Array.isArray(v) ? v : [v];
  return list.filter((x): x is number => Number.isInteger(x) && (x as number) >= 0);
}

/** The template of `chat_template`: a string, or a list of `{name, template}` of which `default` is used. */
function pickTemplate(v: unknown, tools: boolean): string | undefined {
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) {
    const named = new Map(
      v
        .filter(
          (t): t is Json => t !== null && typeof t === 'object' && typeof (t as Json).template === 'string',
        )
        .map((t) => [t.name, t.template as string]),
    );
    return (tools ? named.get('tool_use') : undefined) ?? named.get('default');
  }
  return undefined;
}

interface Init {
  vocabSize: number;
  eosId: number;
  padId: number;
  bosId: number | undefined;
  stopIds: number[];
  specialTokens: Record<string, string | undefined>;
  chatTemplate: string | undefined;
  specialIds: Set<number>;
}

/**
 * A Hugging Face tokenizer (tokenizer.json + tokenizer_config.json).
 *
 * `encode` follows `transformers`: added tokens in the text (`<|im_start|>`, `<bos>`) become their ids, which is
 * what a rendered chat template needs. Special-token roles: `bos`/`eos`/`pad` from tokenizer_config.json, else
 * from the model's config.json / generation_config.json ids; a missing pad is the EOS (as TRL does).
 */
export class HfTokenizer {
  /** Embedding rows needed: the largest id + 1. */
  readonly vocabSize: number;
  readonly eosId: number;
  readonly padId: number;
  readonly bosId: number | undefined;
  /** Every id that ends generation: the EOS and generation_config.json's `eos_token_id` list. */
  readonly stopIds: readonly number[];
  /** The special-token strings, as the chat template sees them (`bos_token`, `eos_token`, ...). */
  readonly specialTokens: Readonly<Record<string, string | undefined>>;
  /** The chat template, when the tokenizer ships one. */
  readonly chatTemplate: string | undefined;

  private readonly tok: Tokenizer;
  private readonly specialIds: Set<number>;
  private readonly config: Json;
  private readonly files: HfTokenizerFiles;

  private constructor(tok: Tokenizer, config: Json, files: HfTokenizerFiles, init: Init) {
    this.tok = tok;
    this.config = config;
    this.files = files;
    this.vocabSize = init.vocabSize;
    this.eosId = init.eosId;
    this.padId = init.padId;
    this.bosId = init.bosId;
    this.stopIds = Object.freeze(init.stopIds.slice());
    this.specialTokens = Object.freeze({ ...init.specialTokens });
    this.chatTemplate = init.chatTemplate;
    this.specialIds = init.specialIds;
  }

  /**
   * Builds the tokenizer from the file contents (parsed JSON or text).
   * @throws Error naming the source and the file when a file is not JSON, tokenizer.json cannot be built, or
   *   no EOS token can be found.
   */
  static fromJSON(files: HfTokenizerFiles): HfTokenizer {
    const source = files.source ?? '<tokenizer>';
    const tj = parse(files.tokenizer, 'tokenizer.json', source);
    if (tj === undefined || tj.model === undefined) {
      throw new Error(
        `HfTokenizer: ${source} tokenizer.json has no "model"; is it a Hugging Face tokenizer.json?`,
      );
    }
    const config = parse(files.tokenizerConfig, 'tokenizer_config.json', source) ?? {};
    const modelConfig = parse(files.modelConfig, 'config.json', source) ?? {};
    const genConfig = parse(files.generationConfig, 'generation_config.json', source) ?? {};
    // The library reads token roles as plain strings; AddedToken objects are flattened here.
    const flat: Json = { ...config };
    const roles = [
      'bos_token',
      'eos_token',
      'pad_token',
      'unk_token',
      'sep_token',
      'cls_token',
      'mask_token',
    ];
    for (const role of roles) {
      const s = tokenString(config[role]);
      if (s === undefined) delete flat[role];
      else flat[role] = s;
    }
    let tok: Tokenizer;
    try {
      tok = new Tokenizer(tj, flat);
    } catch (e) {
      throw new Error(`HfTokenizer: cannot build ${source} tokenizer.json: ${(e as Error).message}`, {
        cause: e,
      });
    }
    const vocab = tok.get_vocab(true);
    let vocabSize = 0;
    for (const id of vocab.values()) vocabSize = Math.max(vocabSize, id + 1);
    const idOf = (role: string, idKey: string): number | undefined => {
      const s = flat[role] as string | undefined;
      if (s !== undefined) {
        const id = tok.token_to_id(s);
        if (id === undefined) {
          throw new Error(
            `HfTokenizer: ${source} tokenizer_config.json ${role} ${JSON.stringify(s)} is not in tokenizer.json's vocabulary.`,
          );
        }
        return id;
      }
      return idList(genConfig[idKey])[0] ?? idList(modelConfig[idKey])[0];
    };
    const eosId = idOf('eos_token', 'eos_token_id');
    if (eosId === undefined) {
      throw new Error(
        `HfTokenizer: ${source} names no EOS token: set "eos_token" in tokenizer_config.json or "eos_token_id" in config.json.`,
      );
    }
    const bosId = idOf('bos_token', 'bos_token_id');
    const padId = idOf('pad_token', 'pad_token_id') ?? eosId;
    const stopIds = [...new Set([eosId, ...idList(genConfig.eos_token_id)])];
    const specialTokens: Record<string, string | undefined> = {};
    for (const role of roles) specialTokens[role] = flat[role] as string | undefined;
    if (specialTokens.bos_token === undefined && bosId !== undefined)
      specialTokens.bos_token = tok.id_to_token(bosId);
    if (specialTokens.eos_token === undefined) specialTokens.eos_token = tok.id_to_token(eosId);
    if (specialTokens.pad_token === undefined) specialTokens.pad_token = tok.id_to_token(padId);
    const specialIds = new Set<number>();
    for (const [id, t] of tok.get_added_tokens_decoder()) if (t.special) specialIds.add(id);
    return new HfTokenizer(tok, config, files, {
      vocabSize,
      eosId,
      padId,
      bosId,
      stopIds,
      specialTokens,
      chatTemplate: files.chatTemplate ?? pickTemplate(config.chat_template, false),
      specialIds,
    });
  }

  /**
   * The tokenizer's files as text, to write next to a saved model: `tokenizer.json`, `tokenizer_config.json` and
   * `chat_template.jinja` (when the template came from one).
   */
  toFiles(): Record<string, string> {
    const tokenizer = this.files.tokenizer;
    // The roles found in config.json / generation_config.json are written down, as `save_pretrained` does.
    const config: Json = { ...this.config };
    for (const role of ['bos_token', 'eos_token', 'pad_token']) {
      if (config[role] == null && this.specialTokens[role] !== undefined)
        config[role] = this.specialTokens[role];
    }
    const out: Record<string, string> = {
      'tokenizer.json': typeof tokenizer === 'string' ? tokenizer : JSON.stringify(tokenizer),
      'tokenizer_config.json': JSON.stringify(config, null, 2),
    };
    if (this.files.chatTemplate !== undefined) out['chat_template.jinja'] = this.files.chatTemplate;
    return out;
  }

  /** Token ids of `text`; added tokens written in the text become their ids. */
  encode(text: string, options: HfEncodeOptions = {}): number[] {
    if (typeof text !== 'string')
      throw new TypeError(`HfTokenizer.encode: text must be a string, got ${typeof text}.`);
    return this.tok.encode(text, { add_special_tokens: options.addSpecialTokens ?? false }).ids;
  }

  /** The text of `ids` (tokenizer_config.json's `clean_up_tokenization_spaces` applies, as in `transformers`). */
  decode(ids: ArrayLike<number>, options: HfDecodeOptions = {}): string {
    if (ids.length === 0) return ''; // the library refuses an empty list
    return this.tok.decode(Array.from(ids), { skip_special_tokens: options.skipSpecial ?? false });
  }

  tokenToId(token: string): number | undefined {
    return this.tok.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.tok.id_to_token(id);
  }

  /** Whether `id` is a special added token (`<|im_end|>`, `<bos>`). */
  isSpecialId(id: number): boolean {
    return this.specialIds.has(id);
  }

  /** Whether the tokenizer has a chat template (for `tools`, a `tool_use` one may be picked). */
  hasChatTemplate(): boolean {
    return this.chatTemplate !== undefined;
  }

  /**
   * The conversation as text, rendered with the tokenizer's chat template (as `transformers`'
   * `apply_chat_template(messages, tokenize=False)`); encode it with {@link encode}.
   * @throws Error when the tokenizer has no chat template, a message is malformed, or the template fails.
   */
  applyChatTemplate(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): string {
    const template =
      (options.tools !== undefined ? pickTemplate(this.config.chat_template, true) : undefined) ??
      this.chatTemplate;
    if (template === undefined) {
      throw new Error(
        'applyChatTemplate: this tokenizer has no chat template (tokenizer_config.json has no "chat_template" and ' +
          "there is no chat_template.jinja); use an instruct model's tokenizer or pass the text yourself.",
      );
    }
    return renderChatTemplate(template, messages, options, this.specialTokens);
  }
}
