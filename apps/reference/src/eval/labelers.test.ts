import { describe, expect, it } from 'vitest';
import { goldLabeler, judgeLabeler } from './labelers.js';

describe('labelers', () => {
  it('gold is VADER compound: x / sqrt(x² + 15) of the summed valence', async () => {
    const gold = goldLabeler();
    expect(gold.name).toBe('gold:vader');
    // VADER lexicon: "good" 1.9 -> 1.9 / sqrt(1.9² + 15).
    const s = await gold.score(['The food was'], [' good']);
    expect(s[0]).toBeCloseTo(1.9 / Math.sqrt(1.9 ** 2 + 15), 4);
    const [neutral] = await gold.score([''], ['']);
    expect(neutral).toBe(0);
  });
  it("reads prompt + response by default, the response alone with scope 'response'", async () => {
    const prompts = ['I hated it, but'];
    const responses = [' the end'];
    const [full] = await goldLabeler().score(prompts, responses);
    const [resp] = await goldLabeler({ scope: 'response' }).score(prompts, responses);
    expect(full!).toBeLessThan(0);
    expect(resp).toBe(0);
    expect(() => goldLabeler({ scope: 'both' as never })).toThrow(/scope must be 'full' or 'response'/);
  });
  it('judge (wink, AFINN) is the AFINN valence scaled by 1/5', async () => {
    // AFINN-165: good = +3, bad = −3; wink averages over sentiment words, AFINN-comparative over tokens.
    const wink = judgeLabeler();
    expect(wink.name).toBe('judge:wink');
    const w = await wink.score(['', ''], ['good', 'bad']);
    expect(Array.from(w)).toEqual([0.6, -0.6]); // float64 scores: exactly 3/5
    const afinn = judgeLabeler({ kind: 'afinn' });
    expect(afinn.name).toBe('judge:afinn');
    const a = await afinn.score(['', ''], ['good', 'good movie']);
    expect(a[0]).toBeCloseTo(0.6, 6);
    expect(a[1]).toBeCloseTo(0.3, 6); // 3 / 2 tokens / 5
    expect(() => judgeLabeler({ kind: 'gpt' as never })).toThrow(/'wink' or 'afinn'/);
  });
  it('ranks a positive review above a negative one (all three)', async () => {
    for (const f of [goldLabeler(), judgeLabeler(), judgeLabeler({ kind: 'afinn' })]) {
      const [pos, neg] = await f.score(['This place', 'This place'], [' is wonderful.', ' is terrible.']);
      expect(pos!, f.name).toBeGreaterThan(neg!);
    }
  });
});
