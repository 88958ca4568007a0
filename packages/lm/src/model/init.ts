/**
 * Seeded parameter initialisation. Values are drawn in JS (not with tf.randomNormal) so that the same seed
 * gives bit-identical weights on every backend and every platform.
 */

/**
 * A small, fast 32-bit PRNG (SplitMix32-style mixing of a Weyl sequence). Quality is ample for weight
 * initialisation; it is not for cryptography.
 */
export class SeededRandom {
  private state: number;

  constructor(seed: number) {
    if (!Number.isFinite(seed)) throw new Error(`SeededRandom: seed must be a finite number, got ${seed}`);
    // Fold any finite number (including fractions and values above 2^32) into a 32-bit state.
    this.state = (Math.floor(seed) ^ Math.floor(seed / 2 ** 32)) >>> 0;
  }

  /** Uniform in [0, 1) with 32 bits of resolution. */
  nextFloat(): number {
    this.state = (this.state + 0x9e3779b9) >>> 0;
    let z = this.state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    z = (z ^ (z >>> 16)) >>> 0;
    return z / 4294967296;
  }

  /** Fills `out` with N(0, std^2) samples (Box-Muller, both outputs used). */
  fillNormal(out: Float32Array, std: number): Float32Array {
    for (let i = 0; i < out.length; i += 2) {
      const u1 = 1 - this.nextFloat(); // (0, 1]: log is finite
      const u2 = this.nextFloat();
      const r = Math.sqrt(-2 * Math.log(u1)) * std;
      out[i] = r * Math.cos(2 * Math.PI * u2);
      if (i + 1 < out.length) out[i + 1] = r * Math.sin(2 * Math.PI * u2);
    }
    return out;
  }
}
