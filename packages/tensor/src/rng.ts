/**
 * Seeded, splittable pseudo-random number generator for sampling, shuffling and tfjs op seeds.
 *
 * Generator: xoshiro128** (Blackman & Vigna), 128-bit state, period 2^128 − 1, 32-bit outputs; fast in
 * JavaScript because every step is 32-bit integer arithmetic (`Math.imul`, shifts). Seeding and splitting
 * expand a seed into the four state words with a Weyl sequence passed through the murmur3 32-bit
 * finalizer (the SplitMix construction at 32 bits), so nearby seeds give unrelated streams.
 *
 * Everything is deterministic: the same seed gives the same sequence on every platform (no floating-point
 * in the state update), and {@link Rng.state} / {@link rngFromState} restore a stream mid-way exactly.
 */

/** Serialized generator state (plain JSON). */
export interface RngState {
  algorithm: 'xoshiro128**';
  version: 1;
  /** The four 32-bit state words, each an integer in [0, 2^32), not all zero. */
  s: [number, number, number, number];
}

const TWO_32 = 4294967296;
const TWO_53 = 9007199254740992;

/** murmur3's 32-bit finalizer: a bijection on uint32 with full avalanche. */
function fmix32(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Expands seed words into a non-zero xoshiro128** state (SplitMix-style: Weyl sequence + finalizer). */
function expandSeed(words: readonly number[]): [number, number, number, number] {
  // Absorb the words into a 32-bit accumulator chain, then draw four words from a Weyl sequence on it.
  let acc = 0x6a09e667;
  for (const w of words) acc = fmix32((acc ^ fmix32((w >>> 0) + 0x9e3779b9)) + 0x9e3779b9);
  let weyl = acc;
  const out: number[] = [];
  for (let i = 0; i < 4; i++) {
    weyl = (weyl + 0x9e3779b9) >>> 0;
    out.push(fmix32(weyl ^ fmix32(acc + i)));
  }
  if ((out[0]! | out[1]! | out[2]! | out[3]!) === 0) out[0] = 1; // the all-zero state is a fixed point
  return out as [number, number, number, number];
}

/** Words for a seed: integers split into their low and high 32 bits, strings hashed per UTF-16 unit. */
function seedWords(seed: number | string): number[] {
  if (typeof seed === 'number') {
    if (!Number.isSafeInteger(seed)) {
      throw new Error(
        `createRng: \`seed\` must be a safe integer or a string, got ${String(seed)}; ` +
          'round it (Math.floor) or pass it as a string.',
      );
    }
    const lo = (seed % TWO_32) >>> 0;
    const hi = Math.floor(seed / TWO_32) >>> 0;
    return [0x6e756d00 /* "num" tag */, lo, hi];
  }
  if (typeof seed === 'string') {
    const words = [0x73747200 /* "str" tag */, seed.length];
    for (let i = 0; i < seed.length; i++) words.push(seed.charCodeAt(i));
    return words;
  }
  throw new TypeError(
    `createRng: \`seed\` must be a number or a string, got ${seed === null ? 'null' : typeof seed}.`,
  );
}

/** A seeded PRNG stream. Create with {@link createRng} or {@link rngFromState}. */
export class Rng {
  #s0: number;
  #s1: number;
  #s2: number;
  #s3: number;

  /** Prefer {@link createRng} / {@link rngFromState}; the words are used as given (validated). */
  constructor(words: readonly [number, number, number, number]) {
    const s = validateWords(words, 'Rng');
    [this.#s0, this.#s1, this.#s2, this.#s3] = s;
  }

  /** Next 32-bit output, an integer in [0, 2^32). */
  nextUint32(): number {
    const s0 = this.#s0;
    const s1 = this.#s1;
    const s2 = this.#s2;
    const s3 = this.#s3;
    const r = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    const n2 = s2 ^ s0;
    const n3 = s3 ^ s1;
    this.#s1 = (s1 ^ n2) >>> 0;
    this.#s0 = (s0 ^ n3) >>> 0;
    this.#s2 = (n2 ^ t) >>> 0;
    this.#s3 = rotl(n3, 11) >>> 0;
    return r;
  }

  /** Uniform in [0, 1) with 53 random bits (two 32-bit outputs), so every double of the form k/2^53. */
  uniform(): number {
    const hi = this.nextUint32() >>> 5; // 27 bits
    const lo = this.nextUint32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / TWO_53;
  }

  /**
   * Standard normal draw (Box–Muller, one output per call from two uniforms; no cached spare, so the state
   * stays the four words).
   */
  normal(mean = 0, std = 1): number {
    const u1 = 1 - this.uniform(); // (0, 1]: log is finite
    const u2 = this.uniform();
    return mean + std * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

  /**
   * Uniform integer in [0, n), exactly unbiased (rejection of the incomplete top block).
   *
   * @param n an integer in [1, 2^53].
   */
  int(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > TWO_53) {
      throw new Error(`Rng.int: \`n\` must be an integer in [1, 2^53], got ${String(n)}.`);
    }
    if (n <= TWO_32) {
      const limit = TWO_32 - (TWO_32 % n); // multiple of n: values below it map uniformly
      for (;;) {
        const x = this.nextUint32();
        if (x < limit) return x % n;
      }
    }
    const limit = TWO_53 - (TWO_53 % n);
    for (;;) {
      const x = this.uniform() * TWO_53; // an exact 53-bit integer
      if (x < limit) return x % n;
    }
  }

  /** Fisher–Yates shuffle of `array` in place; returns the same array. */
  shuffle<T>(array: T[]): T[] {
    if (!Array.isArray(array))
      throw new TypeError('Rng.shuffle: `array` must be an array (use permutation(n) for indices).');
    for (let i = array.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = array[i]!;
      array[i] = array[j]!;
      array[j] = tmp;
    }
    return array;
  }

  /** A uniformly random permutation of `0..n−1`. */
  permutation(n: number): number[] {
    if (!Number.isSafeInteger(n) || n < 0)
      throw new Error(`Rng.permutation: \`n\` must be an integer >= 0, got ${String(n)}.`);
    return this.shuffle(Array.from({ length: n }, (_, i) => i));
  }

  /**
   * An independent child stream. The parent advances by four outputs, which seed the child through the
   * seed expander, so successive splits (and splits of splits) give unrelated streams and the parent's own
   * continuation differs from every child.
   */
  split(): Rng {
    const words = [
      0x73706c74 /* "splt" tag */,
      this.nextUint32(),
      this.nextUint32(),
      this.nextUint32(),
      this.nextUint32(),
    ];
    return new Rng(expandSeed(words));
  }

  /**
   * A seed for tfjs random ops (`tf.randomUniform(shape, lo, hi, dtype, seed)`, `tf.multinomial`, ...): an
   * integer in [0, 2^31), so it is safe wherever a non-negative int32 is expected. Advances the stream.
   */
  tfSeed(): number {
    return this.nextUint32() >>> 1;
  }

  /** A copy with the same state (both then produce the same sequence). */
  clone(): Rng {
    return new Rng([this.#s0, this.#s1, this.#s2, this.#s3]);
  }

  /** The state as plain JSON; {@link rngFromState} resumes exactly here. */
  state(): RngState {
    return { algorithm: 'xoshiro128**', version: 1, s: [this.#s0, this.#s1, this.#s2, this.#s3] };
  }

  /** Same as {@link rngFromState}. */
  static fromState(state: RngState | string): Rng {
    return rngFromState(state);
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

function validateWords(words: unknown, fn: string): [number, number, number, number] {
  if (!Array.isArray(words) || words.length !== 4) {
    throw new Error(
      `${fn}: state \`s\` must be an array of 4 uint32 words, got ${Array.isArray(words) ? `length ${words.length}` : typeof words}.`,
    );
  }
  for (let i = 0; i < 4; i++) {
    const w: unknown = words[i];
    if (typeof w !== 'number' || !Number.isInteger(w) || w < 0 || w >= TWO_32) {
      throw new Error(`${fn}: state word s[${i}] must be an integer in [0, 2^32), got ${String(w)}.`);
    }
  }
  if (words.every((w) => w === 0)) {
    throw new Error(
      `${fn}: state words are all zero, which xoshiro128** never leaves; the state is corrupt.`,
    );
  }
  return [words[0], words[1], words[2], words[3]] as [number, number, number, number];
}

/**
 * A generator seeded from `seed`: a safe integer (negative allowed) or any string. Equal seeds give
 * equal streams; the number 1 and the string '1' give different streams.
 */
export function createRng(seed: number | string): Rng {
  return new Rng(expandSeed(seedWords(seed)));
}

/** Restores a generator from {@link Rng.state} output (the object or its JSON string), validating it. */
export function rngFromState(state: RngState | string): Rng {
  let obj: unknown = state;
  if (typeof state === 'string') {
    try {
      obj = JSON.parse(state);
    } catch (e) {
      throw new Error(`rngFromState: not valid JSON (${(e as Error).message}).`);
    }
  }
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) {
    throw new Error('rngFromState: expected an object {algorithm, version, s} from Rng.state().');
  }
  const o = obj as Record<string, unknown>;
  if (o.algorithm !== 'xoshiro128**') {
    throw new Error(
      `rngFromState: unsupported algorithm ${JSON.stringify(o.algorithm)}; expected "xoshiro128**".`,
    );
  }
  if (o.version !== 1) {
    throw new Error(`rngFromState: unsupported state version ${JSON.stringify(o.version)}; expected 1.`);
  }
  return new Rng(validateWords(o.s, 'rngFromState'));
}
