import { describe, expect, it } from 'vitest';
import { buildConfig } from '../config/load.js';
import {
  accuracyLabeler,
  allProblems,
  arithmeticReward,
  leadingNumberJudge,
  parseAnswer,
  splitProblems,
} from './arithmetic.js';
import { loadTaskData, promptRecords } from './data.js';

const rec = (prompt: string, answer: string) => ({ prompt, answer });
/** The sum a prompt "a+b=" asks for. */
const sumOf = (prompt: string): number =>
  prompt
    .slice(0, -1)
    .split('+')
    .reduce((a, x) => a + Number(x), 0);

describe('parseAnswer', () => {
  it('reads a well-formed answer, a leading number, and nothing from malformed text', () => {
    expect(parseAnswer('19')).toEqual({ value: '19', wellFormed: true });
    expect(parseAnswer(' 19 ')).toEqual({ value: '19', wellFormed: true });
    expect(parseAnswer('19 apples')).toEqual({ value: '19', wellFormed: false });
    expect(parseAnswer('19+1')).toEqual({ value: '19', wellFormed: false });
    expect(parseAnswer('apples')).toEqual({ wellFormed: false });
    expect(parseAnswer('')).toEqual({ wellFormed: false });
    expect(parseAnswer('-3')).toEqual({ wellFormed: false });
    // Not the way the data writes numbers.
    expect(parseAnswer('07')).toEqual({ wellFormed: false });
    expect(parseAnswer('0')).toEqual({ value: '0', wellFormed: true });
  });
});

describe('the arithmetic reward', () => {
  const prompts = ['12+7=', '12+7=', '12+7=', '12+7=', '3+4='];
  const responses = ['19', '18', '19 apples', 'nineteen', ' 7'];
  const records = [...Array(4).fill(rec('12+7=', '19')), rec('3+4=', '7')];

  it('gives 1 for the right answer and 0 for a wrong or malformed one', async () => {
    const r = await arithmeticReward().score(prompts, responses, { records });
    expect(Array.from(r)).toEqual([1, 0, 0, 0, 1]);
  });

  it('adds the format reward to every well-formed answer, right or wrong', async () => {
    const r = await arithmeticReward({ formatReward: 0.1 }).score(prompts, responses, { records });
    expect(Array.from(r)).toEqual([1.1, 0.1, 0, 0, 1.1]);
  });

  it('reads the answer from the record, not the prompt text', async () => {
    const r = await arithmeticReward().score(['12+7='], ['20'], { records: [rec('12+7=', '20')] });
    expect(Array.from(r)).toEqual([1]);
  });

  it('gold is strict accuracy, the judge accepts a right leading number', async () => {
    expect(Array.from(await accuracyLabeler().score(prompts, responses, { records }))).toEqual([
      1, 0, 0, 0, 1,
    ]);
    expect(Array.from(await leadingNumberJudge().score(prompts, responses, { records }))).toEqual([
      1, 0, 1, 0, 1,
    ]);
  });

  it('names the fix when a row has no answer', async () => {
    await expect(arithmeticReward().score(['1+1='], ['2'])).rejects.toThrow(
      /row 0 has no answer.*\{ prompt, answer/,
    );
  });
});

describe('the arithmetic task data', () => {
  const cfg = buildConfig({ preset: 'tiny', config: { task: 'arithmetic' } });

  it('holds out data.evalPrompts problems that no training stage sees', async () => {
    expect(allProblems(cfg.arithmetic.maxOperand)).toHaveLength(100);
    const { train, heldOut } = splitProblems(cfg);
    expect(heldOut).toHaveLength(cfg.data.evalPrompts);
    expect(train).toHaveLength(100 - cfg.data.evalPrompts);
    const data = await loadTaskData(cfg);
    const evalSet = new Set(data.evalPrompts);
    for (const p of [...data.sftPairs.map((x) => x.prompt), ...data.rlPrompts, ...data.labelPrompts]) {
      expect(evalSet.has(p)).toBe(false);
    }
    expect(data.labelPrompts).toHaveLength(cfg.label.prompts);
    expect(data.sftPairs[0]!.completion).toBe(String(sumOf(data.sftPairs[0]!.prompt)));
    // Per-prompt data: every prompt's record carries its answer.
    const records = promptRecords(data, data.evalPrompts) as { prompt: string; answer: string }[];
    for (const r of records) expect(Number(r.answer)).toBe(sumOf(r.prompt));
    // The reward model's check: a right (1) and a wrong (0) answer per held-out problem.
    expect(data.heldOut).toHaveLength(2 * cfg.data.evalPrompts);
    expect(
      data.heldOut
        .filter((s) => s.label === 1)
        .every((s) => records.some((r) => r.answer === s.completion && r.prompt === s.prompt)),
    ).toBe(true);
  });

  it('refuses more evaluation problems than there are', () => {
    const big = buildConfig({ preset: 'tiny', config: { task: 'arithmetic', data: { evalPrompts: 100 } } });
    expect(() => splitProblems(big)).toThrow(
      /data.evalPrompts \(100\) must be smaller than the 100 problems/,
    );
  });

  it('lays the task overlay over the preset, under the flags', () => {
    expect(cfg.train.maxNewTokens).toBe(4);
    expect(cfg.model.base).toBe('default');
    expect(cfg.runDir).toBe('runs/arithmetic-tiny');
    const flagged = buildConfig({
      flags: new Map([
        ['task', 'arithmetic'],
        ['train.maxNewTokens', '6'],
      ]),
    });
    expect([flagged.runDir, flagged.train.maxNewTokens]).toEqual(['runs/arithmetic', 6]);
    expect(buildConfig().task).toBe('reviews');
    expect(() => buildConfig({ config: { task: 'poetry' } })).toThrow(/task/);
  });
});
