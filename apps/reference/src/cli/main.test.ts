import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { COMMANDS, helpText, main, parseArgv } from './main.js';
import { Progress } from '../progress.js';

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

  it('makes a flag followed by another flag `true`, even one that takes a value', () => {
    const p = parseArgv(['run', '--some.bool', '--sft.steps', '3', '--preset', '--force', '-n', '2']);
    expect(p.flags.get('some.bool')).toBe(true);
    expect(p.flags.get('sft.steps')).toBe('3');
    expect(p.flags.get('preset')).toBe(true);
    expect(p.flags.get('force')).toBe(true);
    expect(p.flags.get('n')).toBe('2');
  });
});

describe('main', () => {
  // Printed text and progress lines together, as a terminal shows them.
  const run = async (argv: string[]) => {
    const out: string[] = [];
    const code = await main(argv, {
      initBackend: false,
      print: (t) => void out.push(t),
      progress: new Progress({ write: (t) => void out.push(t.trimEnd()), isTTY: false }),
      signal: new AbortController().signal,
    });
    return { code, text: out.join('\n') };
  };
  const root = mkdtempSync(join(tmpdir(), 'relign-cli-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

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

  it("refuses another command's flag and a value given to a boolean flag, with exit code 2", async () => {
    const algo = await run(['run', '--preset', 'tiny', '--run-dir', join(root, 'algo'), '--algo', 'dpo']);
    expect(algo).toMatchObject({
      code: 2,
      text: expect.stringContaining('--algo is an option of relign train'),
    });
    expect(await run(['sft', '--no-speed'])).toMatchObject({
      code: 2,
      text: expect.stringContaining('--no-speed is an option of relign doctor, not of relign sft'),
    });
    expect(await run(['run', '--resume=yes'])).toMatchObject({
      code: 2,
      text: expect.stringContaining("--resume takes no value (got '--resume=yes')"),
    });
  });

  it('refuses a run directory that relign did not create unless --force, and deletes none of its files', async () => {
    const dir = join(root, 'thesis');
    mkdirSync(join(dir, 'report'), { recursive: true });
    mkdirSync(join(dir, 'train'), { recursive: true });
    writeFileSync(join(dir, 'report', 'thesis.tex'), 'my thesis');
    writeFileSync(join(dir, 'train', 'data.csv'), 'a,b');
    const r = await run(['run', '--preset', 'tiny', '--run-dir', dir]);
    expect(r.code).toBe(2);
    expect(r.text).toContain(`${dir} is not empty and has no .relign-run.json`);
    expect(r.text).toContain('--force');
    expect(r.text).not.toMatch(/== sft/);
    expect(readFileSync(join(dir, 'report', 'thesis.tex'), 'utf8')).toBe('my thesis');
    expect(readFileSync(join(dir, 'train', 'data.csv'), 'utf8')).toBe('a,b');
    expect(existsSync(join(dir, 'stages.json'))).toBe(false);
    expect(existsSync(join(dir, 'config.json'))).toBe(false);
  });

  it('checks plugins and the starting model before the first stage writes anything', async () => {
    const dir = join(root, 'typo');
    const r = await run(['run', '--preset', 'tiny', '--run-dir', dir, '--train.algos', 'p3o-v2,nope']);
    expect(r.code).toBe(2);
    expect(r.text).toMatch(/train\.algos: 'nope': resolvePlugin\('nope'\): no plugin of that name/);
    expect(r.text).not.toMatch(/== sft/);
    expect(existsSync(dir)).toBe(false);

    const base = await run([
      'sft',
      '--preset',
      'tiny',
      '--run-dir',
      dir,
      '--model.base',
      join(root, 'nowhere'),
    ]);
    expect(base.code).toBe(2);
    expect(base.text).toMatch(/model\.base: .*nowhere does not exist/);
    expect(existsSync(dir)).toBe(false);

    const bad = await run(['train', '--preset', 'tiny', '--run-dir', dir, '--algos.p3o-v2.lr', '-1']);
    expect(bad.code).toBe(2);
    expect(existsSync(dir)).toBe(false);
  });

  it("names a run's config.json that is not valid JSON, and the fix", async () => {
    const dir = join(root, 'corrupt');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'config.json'), '{"preset": "tiny", "sft": {');
    const r = await run(['eval', '--run-dir', dir]);
    expect(r.code).toBe(1);
    expect(r.text).toContain(`${join(dir, 'config.json')} is not valid JSON (`);
    expect(r.text).toMatch(/pass --preset\/--config/);
  });
});
