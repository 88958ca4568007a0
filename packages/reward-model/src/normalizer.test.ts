import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { normalizedReward, RewardNormalizer } from './normalizer.js';
import { rewardFunction } from './reward-function.js';

function close(actual: ArrayLike<number>, expected: number[], digits = 5): void {
  expect(actual.length).toBe(expected.length);
  expected.forEach((e, i) => expect(actual[i]).toBeCloseTo(e, digits));
}

describe('RewardNormalizer (docs/algorithms.md §2.3, vector T15)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rm-norm-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('scales by the running std updated before use', () => {
    const n = new RewardNormalizer({ scale: true });
    const first = n.process([1, 2, 3, 4]);
    expect(n.mean).toBeCloseTo(2.5, 10);
    expect(n.std).toBeCloseTo(1.290994, 6);
    close(
      first,
      [1, 2, 3, 4].map((x) => x / 1.290994),
    );
    const second = n.process([10, 12]);
    expect(n.mean).toBeCloseTo(5.333333, 6);
    expect(n.std).toBeCloseTo(4.546061, 6);
    close(second, [2.199707, 2.639648]);
  });

  it('normalises with the running mean when normalize is set', () => {
    const n = new RewardNormalizer({ normalize: true });
    n.process([1, 2, 3, 4]);
    close(n.process([10, 12]), [1.02653, 1.466471]);
  });

  it('clips after scaling by default, before scaling (and before the statistics) on request', () => {
    const after = new RewardNormalizer({ normalize: true, clip: 1.2 });
    after.process([1, 2, 3, 4]);
    close(after.process([10, 12]), [1.02653, 1.2]);

    // Before scaling: raw scores clipped to ±3 (so [1, 2, 3, 3] and [3, 3] enter the moments).
    const before = new RewardNormalizer({ scale: true, clip: 3, clipOrder: 'before-scaling' });
    before.process([1, 2, 3, 4]);
    const out = before.process([10, -12]);
    const all = [1, 2, 3, 3, 3, -3];
    const mu = all.reduce((a, b) => a + b, 0) / all.length;
    const sd = Math.sqrt(all.reduce((a, b) => a + (b - mu) ** 2, 0) / (all.length - 1));
    expect(before.std).toBeCloseTo(sd, 6);
    close(out, [3 / sd, -3 / sd]);
  });

  it('is the identity before any data, apart from clipping, and with every transform off', () => {
    close(new RewardNormalizer().apply([5, -7]), [5, -7]);
    close(new RewardNormalizer({ clip: 2 }).apply([5, -7, 1]), [2, -2, 1]);
    const off = new RewardNormalizer({ scale: false });
    off.process([1, 2, 3, 100]);
    close(off.apply([10, -3]), [10, -3]);
  });

  it('rejects NaN and infinite scores naming the row, leaving the statistics untouched', () => {
    const n = new RewardNormalizer();
    n.process([1, 2, 3]);
    const before = n.toJSON();
    expect(() => n.process([0, Number.NaN, 1])).toThrow(/row 1 \(NaN\)/);
    expect(() => n.update([Number.POSITIVE_INFINITY])).toThrow(/row 0 \(Infinity\)/);
    expect(() => n.update([])).toThrow(/empty/);
    expect(n.toJSON()).toEqual(before);
  });

  it('validates options', () => {
    expect(() => new RewardNormalizer({ clip: 0 })).toThrow(/clip must be a finite number > 0/);
    expect(() => new RewardNormalizer({ clip: Number.POSITIVE_INFINITY })).toThrow(/clip/);
    expect(() => new RewardNormalizer({ clipOrder: 'sometimes' as 'after-scaling' })).toThrow(/clipOrder/);
  });

  it('survives a JSON and a file round trip exactly', async () => {
    const n = new RewardNormalizer({ normalize: true, clip: 5 });
    n.process([0.3, -1.7, 2.2]);
    n.process([4.1, 0.9]);
    const back = RewardNormalizer.fromJSON(JSON.stringify(n.toJSON()));
    expect(back.toJSON()).toEqual(n.toJSON());
    expect(back.options).toEqual({ scale: true, normalize: true, clip: 5, clipOrder: 'after-scaling' });
    const path = join(dir, 'stats.json');
    await n.save(path);
    const loaded = await RewardNormalizer.load(path);
    expect(loaded.toJSON()).toEqual(n.toJSON());
    // The next batch is processed identically by the original and the restored normaliser.
    expect(Array.from(loaded.process([3, -2]))).toEqual(Array.from(n.process([3, -2])));
  });

  it('reports malformed state files with the field and file name', async () => {
    const path = join(dir, 'bad.json');
    await writeFile(
      path,
      JSON.stringify({ version: 1, options: {}, moments: { mean: 0, var: -1, count: 1 } }),
    );
    await expect(RewardNormalizer.load(path)).rejects.toThrow(/bad\.json: field "moments".*var/);
    await writeFile(path, '{"version": 2}');
    await expect(RewardNormalizer.load(path)).rejects.toThrow(/unsupported version 2/);
    await expect(RewardNormalizer.load(join(dir, 'missing.json'))).rejects.toThrow(
      /cannot read .*missing\.json/,
    );
    expect(JSON.parse(await readFile(path, 'utf8'))).toEqual({ version: 2 });
  });
});

describe('normalizedReward', () => {
  it('passes scores through the normaliser (updating it) or only applies it', async () => {
    const base = rewardFunction((_p: string, r: string) => r.length, { name: 'len' });
    const n = new RewardNormalizer({ normalize: true });
    const fn = normalizedReward(base, n);
    expect(fn.name).toBe('normalized(len)');
    close(
      await fn.score(['', '', '', ''], ['a', 'bb', 'ccc', 'dddd']),
      [-1.161895, -0.387298, 0.387298, 1.161895],
    );
    const frozen = normalizedReward(base, n, { update: false });
    const count = n.moments.count;
    close(await frozen.score([''], ['aaaaaaa']), [(7 - 2.5) / 1.290994]);
    expect(n.moments.count).toBe(count);
  });
});
