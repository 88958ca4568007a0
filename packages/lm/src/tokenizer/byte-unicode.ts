/**
 * GPT-2's reversible byte -> printable-character map ("byte-level" alphabet).
 *
 * GPT-2 stores every token as a string over 256 printable Unicode characters, one per byte value, so that
 * `vocab.json` and `merges.txt` never contain whitespace or control characters. Bytes that are already
 * printable and not whitespace (`!`..`~`, `¡`..`¬`, `®`..`ÿ`) map to themselves; the remaining 68 bytes
 * (controls, space, DEL, NBSP, soft hyphen, ...) map in ascending byte order to U+0100, U+0101, ...
 * (so space, byte 0x20, becomes `Ġ` U+0120 and newline becomes `Ċ` U+010A).
 */

function isSelfMapped(byte: number): boolean {
  return (byte >= 0x21 && byte <= 0x7e) || (byte >= 0xa1 && byte <= 0xac) || (byte >= 0xae && byte <= 0xff);
}

let cachedTable: readonly string[] | undefined;

function table(): readonly string[] {
  if (cachedTable === undefined) {
    const out: string[] = new Array<string>(256);
    let shifted = 0;
    for (let byte = 0; byte < 256; byte++) {
      out[byte] = isSelfMapped(byte) ? String.fromCharCode(byte) : String.fromCharCode(256 + shifted++);
    }
    cachedTable = Object.freeze(out);
  }
  return cachedTable;
}

/**
 * GPT-2's byte -> unicode map.
 * @returns a fresh array of length 256; element `b` is the one-character string that stands for byte `b`.
 */
export function bytesToUnicode(): string[] {
  return table().slice();
}

/** Inverse of {@link bytesToUnicode}: UTF-16 code unit of the character -> byte value. */
export function unicodeToBytes(): Map<number, number> {
  const map = new Map<number, number>();
  table().forEach((ch, byte) => map.set(ch.charCodeAt(0), byte));
  return map;
}
