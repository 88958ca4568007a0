/**
 * UTF-8 encoding into a reusable buffer. `TextEncoder.encode` allocates a fresh array per call, which
 * dominates the cost of encoding millions of short pre-tokenized pieces; this writes into `out` instead.
 * Lone surrogates become U+FFFD (EF BF BD), exactly like `TextEncoder` (the WHATWG "USVString" rule), so
 * byte sequences, and therefore token ids, match tokenizers built on `TextEncoder` (js-tiktoken).
 */

/** Upper bound on the UTF-8 length of a JS string: at most 3 bytes per UTF-16 code unit. */
export function maxUtf8Length(s: string): number {
  return s.length * 3;
}

/**
 * Writes the UTF-8 bytes of `s` into `out` (which must hold {@link maxUtf8Length}(s) bytes).
 * @returns the number of bytes written.
 */
export function encodeUtf8Into(s: string, out: Uint8Array): number {
  let n = 0;
  const len = s.length;
  for (let i = 0; i < len; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      out[n++] = c;
    } else if (c < 0x800) {
      out[n++] = 0xc0 | (c >> 6);
      out[n++] = 0x80 | (c & 0x3f);
    } else {
      if (c >= 0xd800 && c <= 0xdfff) {
        const next = i + 1 < len ? s.charCodeAt(i + 1) : 0;
        if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
          const cp = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
          i++;
          out[n++] = 0xf0 | (cp >> 18);
          out[n++] = 0x80 | ((cp >> 12) & 0x3f);
          out[n++] = 0x80 | ((cp >> 6) & 0x3f);
          out[n++] = 0x80 | (cp & 0x3f);
          continue;
        }
        c = 0xfffd; // lone surrogate: not encodable, replaced as TextEncoder does
      }
      out[n++] = 0xe0 | (c >> 12);
      out[n++] = 0x80 | ((c >> 6) & 0x3f);
      out[n++] = 0x80 | (c & 0x3f);
    }
  }
  return n;
}
