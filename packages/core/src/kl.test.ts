import { describe, expect, it } from 'vitest';
import { AdaptiveKlController, FixedKlController, klControllerFromJSON, sequenceKl } from './kl.js';

describe('AdaptiveKlController (docs/algorithms.md §4.7, vector T14)', () => {
  it('moves beta by the clipped proportional error', () => {
    const above = new AdaptiveKlController(0.2, 6, 10000);
    above.update(8, 256); // e = 0.333 clipped to 0.2
    expect(above.value).toBeCloseTo(0.201024, 6);
    const below = new AdaptiveKlController(0.2, 6, 10000);
    below.update(5, 256); // e = -0.166667
    expect(below.value).toBeCloseTo(0.199147, 6);
  });
  it('round-trips through JSON and rejects non-finite KL', () => {
    const c = new AdaptiveKlController(0.1, 3, 500);
    c.update(10, 64);
    const restored = klControllerFromJSON(JSON.parse(JSON.stringify(c.toJSON())));
    expect(restored.value).toBe(c.value);
    restored.update(1, 64);
    c.update(1, 64);
    expect(restored.value).toBe(c.value);
    expect(() => c.update(NaN, 1)).toThrow('KL must be finite');
  });
  it('fixed controller never moves; bad settings are rejected', () => {
    const f = new FixedKlController(0.05);
    f.update();
    expect(f.value).toBe(0.05);
    expect(klControllerFromJSON(f.toJSON()).value).toBe(0.05);
    expect(() => new FixedKlController(-1)).toThrow('>= 0');
    expect(() => new AdaptiveKlController(0.1, 0)).toThrow('target must be > 0');
  });
});

describe('sequenceKl', () => {
  // Spec T6 per token: ℓθ = [−1, −0.5, −2], ℓref = [−1.5, −0.5, −1] → k1 = [0.5, 0, −1],
  // k3 = [0.106531, 0, 0.718282]. Row 0 uses all three tokens; row 1 only two, and its padding is NaN.
  const lp = [-1.0, -0.5, -2.0, -1.0, -0.5, NaN];
  const ref = [-1.5, -0.5, -1.0, -1.5, -0.5, NaN];
  it('sums k1 over each row up to its length, ignoring padding', () => {
    const k1 = sequenceKl(lp, ref, [3, 2], 3);
    expect(k1[0]).toBeCloseTo(-0.5, 6);
    expect(k1[1]).toBeCloseTo(0.5, 6);
  });
  it('sums k3 likewise', () => {
    const k3 = sequenceKl(lp, ref, [3, 2], 3, 'k3');
    expect(k3[0]).toBeCloseTo(0.106531 + 0.718282, 5);
    expect(k3[1]).toBeCloseTo(0.106531, 5);
  });
  it('rejects inconsistent shapes and lengths', () => {
    expect(() => sequenceKl(lp, ref.slice(1), [3, 2], 3)).toThrow('differ in size');
    expect(() => sequenceKl(lp, ref, [3, 2], 2)).toThrow('expected 2 rows x 2 tokens');
    expect(() => sequenceKl(lp, ref, [4, 2], 3)).toThrow('lengths[0] = 4');
  });
});
