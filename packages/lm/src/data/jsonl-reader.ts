/**
 * The one JSON Lines reader of relign: every dataset format (prompt/completion here, preference pairs in
 * @relign/reward-model) and the app's run files read through it, so they share its streaming, its rules
 * (blank lines skipped, `\r\n` and a leading UTF-8 byte-order mark accepted) and its messages, which name the
 * file and the 1-based line.
 */
// `@relign/tensor`'s file access: node:fs in Node.js, a stand-in that rejects in a browser bundle.
import { nodeFs } from '@relign/tensor';

/** In-memory JSONL text, with a name for error messages. */
export interface JsonlText {
  text: string;
  /** What error messages call the data (default `'<jsonl text>'`). */
  source?: string;
}

/** One non-blank line of a JSONL source, which held a JSON object. */
export interface JsonlRecord {
  value: Record<string, unknown>;
  /** 1-based line number. */
  line: number;
  /** `"<source> line <n>"`: how messages about this line start. */
  where: string;
}

/** Options of {@link readJsonl}. */
export interface ReadJsonlOptions {
  /** The shape every line must have, for messages: e.g. `{"prompt": string, "completion": string}`. */
  shape?: string;
  /** The function the caller documents, named in the messages about a bad `input` (default `readJsonl`). */
  caller?: string;
  /**
   * Tolerant reading (files a crash may have cut short): a line that is not a JSON object is passed here and
   * skipped, instead of being thrown as an error.
   */
  onInvalid?: (problem: string, line: number) => void;
}

/** `null`, `an array`, or the `typeof`: how messages name what a JSON value was. */
export function jsonTypeName(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v;
}

/**
 * Streams the objects of a JSON Lines file (a path) or of in-memory text (`{ text, source? }`), one line at a
 * time through `node:readline`, so a large file is never held whole.
 * @throws Error `"<source> line <n>: not valid JSON (...)"` or `"... expected a JSON object <shape>, got ..."`
 *   (unless `onInvalid`), `"<caller>: cannot read <path> (...)"` with the file error as `cause`.
 */
export async function* readJsonl(
  input: string | JsonlText,
  options: ReadJsonlOptions = {},
): AsyncGenerator<JsonlRecord, void, undefined> {
  const { caller = 'readJsonl', onInvalid } = options;
  const shape = options.shape === undefined ? '' : ` ${options.shape}`;
  let source: string;
  let lines: AsyncIterable<string>;
  let close = async () => {};
  if (typeof input === 'object' && input !== null && typeof input.text === 'string') {
    source = input.source ?? '<jsonl text>';
    // The line breaks readline splits on (\r\n, \n, \r), without node:readline (browser-safe).
    lines = (async function* () {
      yield* input.text.split(/\r\n|\n|\r/);
    })();
  } else if (typeof input === 'string' && input !== '') {
    source = input;
    const cannotRead = (err: unknown) =>
      new Error(`${caller}: cannot read ${input} (${(err as Error).message}).`, { cause: err });
    const file = await nodeFs.open(input).catch((err: unknown) => {
      throw cannotRead(err);
    });
    close = () => file.close();
    lines = (async function* () {
      try {
        yield* file.readLines({ encoding: 'utf8' });
      } catch (err) {
        throw cannotRead(err); // e.g. a directory: opening works, reading does not
      }
    })();
  } else {
    throw new TypeError(`${caller}: pass a file path, or { text } for in-memory JSONL.`);
  }
  try {
    let n = 0;
    for await (const text of lines) {
      n++;
      const raw = n === 1 ? text.replace(/^\uFEFF/, '') : text;
      if (raw.trim() === '') continue;
      const where = `${source} line ${n}`;
      let value: unknown;
      let problem: string | undefined;
      try {
        value = JSON.parse(raw);
        if (value === null || typeof value !== 'object' || Array.isArray(value)) {
          problem = `${where}: expected a JSON object${shape}, got ${jsonTypeName(value)}.`;
        }
      } catch (err) {
        problem = `${where}: not valid JSON (${(err as Error).message}). Each line must be one JSON object${shape}.`;
      }
      if (problem === undefined) {
        yield { value: value as Record<string, unknown>, line: n, where };
      } else if (onInvalid) {
        onInvalid(problem, n);
      } else {
        throw new Error(problem);
      }
    }
  } finally {
    await close();
  }
}
