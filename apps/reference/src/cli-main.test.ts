import { describe, expect, it } from 'vitest';
import { COMMANDS, helpText, main, parseArgv } from './cli-main.js';

describe('parseArgv', () => {
  it('reads the command, --key value, --key=value, bare flags and repeated flags', () => {
    const p = parseArgv([
      'train',
      '--algo',
      'p3o-v2',
      '--sft.steps=10',
      '--resume',
      '--prompt',
      'a b',
      '--prompt',
      'c',
      '--verbose',
    ]);
    expect(p.command).toBe('train');
    expect(p.flags.get('algo')).toBe('p3o-v2');
    expect(p.flags.get('sft.steps')).toBe('10');
    expect(p.flags.get('resume')).toBe(true);
    expect(p.flags.get('verbose')).toBe(true);
    expect(p.all.get('prompt')).toEqual(['a b', 'c']);
    expect(p.positionals).toEqual([]);
  });

  it('never gives --resume a value, takes negative numbers as values, and keeps what follows -- positional', () => {
    const p = parseArgv(['run', '--resume', 'extra', '--train.klCoef', '-1', '--', '--x']);
    expect(p.flags.get('resume')).toBe(true);
    expect(p.flags.get('train.klCoef')).toBe('-1');
    expect(p.positionals).toEqual(['extra', '--x']);
  });
});

describe('main', () => {
  const run = async (argv: string[]) => {
    const out: string[] = [];
    const code = await main(argv, {
      initBackend: false,
      print: (t) => void out.push(t),
      signal: new AbortController().signal,
    });
    return { code, text: out.join('\n') };
  };

  it('prints help listing every command, and every config key with `help config`', async () => {
    const h = await run([]);
    expect(h.code).toBe(0);
    for (const c of COMMANDS.filter((c) => c !== 'help')) expect(h.text).toMatch(new RegExp(`^  ${c} `, 'm'));
    expect((await run(['help', 'config'])).text).toContain('train.iterations');
    expect(helpText('run')).toContain('algos.<name>.<key>');
  });

  it('rejects unknown commands, stray arguments and bad config values with exit code 2', async () => {
    expect(await run(['fly'])).toMatchObject({
      code: 2,
      text: expect.stringMatching(/unknown command 'fly'/),
    });
    expect(await run(['eval', 'now'])).toMatchObject({
      code: 2,
      text: expect.stringMatching(/unexpected argument 'now'/),
    });
    const bad = await run(['run', '--preset', 'tiny', '--train.iterations', '0', '--backend', 'tpu']);
    expect(bad.code).toBe(2);
    expect(bad.text).toMatch(/train\.iterations must be in \[1, inf\) \(got 0/);
    expect(bad.text).toMatch(
      /backend must be one of 'auto', 'tensorflow', 'webgpu', 'wasm', 'cpu' \(got 'tpu'\)/,
    );
    expect((await run(['run', '--preset', 'big'])).text).toMatch(/unknown preset 'big'/);
  });
});
