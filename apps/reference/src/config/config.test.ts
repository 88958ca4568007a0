import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildConfig, flagsToOverrides, readConfigFile } from './load.js';
import { PRESETS } from './presets.js';
import { ConfigError, deepMerge, listFields, schemaDefaults, validateConfig } from './validate.js';
import { FIRST_PARTY_PLUGINS } from '../plugins.js';

const flags = (entries: Record<string, string | true>) => new Map(Object.entries(entries));

function problemsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

describe('validateConfig', () => {
  it('fills defaults and keeps given values', () => {
    const cfg = validateConfig({ sft: { steps: 7 } }, FIRST_PARTY_PLUGINS);
    expect(cfg.sft.steps).toBe(7);
    expect(cfg.sft.batchSize).toBe(schemaDefaults().sft.batchSize);
    expect(cfg.train.algos).toEqual(['ppo-max', 'dpo', 'p3o-v1', 'p3o-v2', 'grpo', 'rloo']);
  });

  it('rejects an unknown key, naming it with the closest known key', () => {
    const [p] = problemsOf(() => validateConfig({ sft: { stpes: 3 } }, FIRST_PARTY_PLUGINS));
    expect(p).toContain("unknown key 'sft.stpes'");
    expect(p).toContain("did you mean 'sft.steps'");
    const [q] = problemsOf(() => validateConfig({ trian: {} }, FIRST_PARTY_PLUGINS));
    expect(q).toContain("unknown key 'trian'");
    expect(q).toContain("did you mean 'train'");
  });

  it('rejects wrong types, naming the dotted key', () => {
    expect(problemsOf(() => validateConfig({ sft: { steps: 'ten' } }))[0]).toMatch(
      /^sft\.steps must be a whole number \(got 'ten'\)/,
    );
    expect(problemsOf(() => validateConfig({ sft: { steps: 2.5 } }))[0]).toBe(
      'sft.steps must be an integer (got 2.5)',
    );
    expect(problemsOf(() => validateConfig({ eval: { checkpoints: 'yes' } }))[0]).toBe(
      "eval.checkpoints must be true or false (got 'yes')",
    );
    expect(problemsOf(() => validateConfig({ train: { algos: 'dpo' } }))[0]).toMatch(
      /^train\.algos must be a list of names/,
    );
    expect(problemsOf(() => validateConfig({ sft: 3 }))[0]).toMatch(/^sft must be a section of settings/);
    expect(problemsOf(() => validateConfig({ backend: 'gpu' }))[0]).toBe(
      "backend must be one of 'auto', 'tensorflow', 'webgpu', 'wasm', 'cpu' (got 'gpu')",
    );
  });

  it('rejects out-of-range values with the range and the default', () => {
    expect(problemsOf(() => validateConfig({ sft: { lr: 0 } }))[0]).toMatch(
      /^sft\.lr must be in \(0, inf\) \(got 0; default 0\.001\)/,
    );
    expect(problemsOf(() => validateConfig({ sft: { steps: 0 } }))[0]).toMatch(
      /^sft\.steps must be in \[1, inf\) \(got 0;/,
    );
    expect(problemsOf(() => validateConfig({ data: { heldOutFraction: 0.95 } }))[0]).toMatch(
      /^data\.heldOutFraction must be in \(0, 0\.9\]/,
    );
    expect(problemsOf(() => validateConfig({ frontier: { klCoefs: [0.1, -1] } }))[0]).toMatch(
      /^frontier\.klCoefs values must be >= 0/,
    );
  });

  it('checks fields against each other', () => {
    expect(problemsOf(() => validateConfig({ data: { promptWordsMin: 5, promptWordsMax: 3 } }))[0]).toBe(
      'data.promptWordsMin (5) must be <= data.promptWordsMax (3)',
    );
    expect(problemsOf(() => validateConfig({ model: { scratch: { nEmbd: 30, nHead: 4 } } }))[0]).toContain(
      'divisible',
    );
  });

  it('lists every problem at once', () => {
    const problems = problemsOf(() => validateConfig({ sft: { steps: -1, lr: 'x' }, nope: 1 }));
    expect(problems).toHaveLength(3);
    const err = (() => {
      try {
        validateConfig({ sft: { steps: -1, lr: 'x' }, nope: 1 });
      } catch (e) {
        return e as Error;
      }
    })()!;
    expect(err.message).toContain('3 problems');
  });

  it("validates plugin sections with the plugin's own schema", () => {
    expect(
      problemsOf(() => validateConfig({ algos: { 'p3o-v2': { lr: -1 } } }, FIRST_PARTY_PLUGINS))[0],
    ).toMatch(/^algos\.p3o-v2: 'lr' must be in \(0, inf\) \(got -1\)/);
    expect(
      problemsOf(() => validateConfig({ algos: { dpo: { betta: 0.1 } } }, FIRST_PARTY_PLUGINS))[0],
    ).toMatch(/^algos\.dpo: unknown key 'betta' \(did you mean 'beta'\?\)/);
    expect(problemsOf(() => validateConfig({ algos: { 'p3o-v3': {} } }, FIRST_PARTY_PLUGINS))[0]).toMatch(
      /^algos\.p3o-v3: no optimizer of that name in train\.algos .*did you mean 'algos\.p3o-v/,
    );
    // A third-party plugin listed in train.algos keeps its section (checked when the plugin loads).
    const cfg = validateConfig(
      { train: { algos: ['my-algo'] }, algos: { 'my-algo': { x: 1 } } },
      FIRST_PARTY_PLUGINS,
    );
    expect(cfg.algos['my-algo']).toEqual({ x: 1 });
  });

  it('every schema field has a description and a valid default', () => {
    const fields = listFields();
    expect(fields.length).toBeGreaterThan(40);
    for (const { path, field } of fields) {
      expect(field.description.length, path).toBeGreaterThan(5);
    }
    // The defaults themselves validate.
    expect(() => validateConfig({})).not.toThrow();
  });
});

describe('presets', () => {
  it.each(['demo', 'tiny', 'gpu'])('%s validates, including its plugin settings', (name) => {
    const cfg = buildConfig({ preset: name });
    expect(cfg.preset).toBe(name);
    expect(cfg.runDir).toBe(PRESETS[name as 'demo'].runDir);
    for (const algo of cfg.train.algos) expect(FIRST_PARTY_PLUGINS[algo]).toBeDefined();
  });

  it('rejects an unknown preset', () => {
    expect(problemsOf(() => buildConfig({ preset: 'huge' }))[0]).toBe(
      "unknown preset 'huge'; presets: demo, tiny, gpu",
    );
  });
});

describe('flags', () => {
  it('type flags by the schema (numbers, booleans, lists) and by plugin schemas', () => {
    const o = flagsToOverrides(
      flags({
        'sft.steps': '100',
        'train.algos': 'p3o-v2, dpo',
        'frontier.klCoefs': '0.01,0.1',
        'eval.checkpoints': 'false',
        'algos.p3o-v2.lr': '1e-4',
        'algos.dpo.lossType': 'ipo',
        'run-dir': 'runs/x',
        'my.thing': '3',
      }),
    );
    expect(o).toEqual({
      sft: { steps: 100 },
      train: { algos: ['p3o-v2', 'dpo'] },
      frontier: { klCoefs: [0.01, 0.1] },
      eval: { checkpoints: false },
      algos: { 'p3o-v2': { lr: 1e-4 }, dpo: { lossType: 'ipo' } },
      runDir: 'runs/x',
      my: { thing: 3 },
    });
  });

  it('flags override file and preset; bad flag values are reported by key', () => {
    const dir = mkdtempSync(join(tmpdir(), 'relign-config-'));
    const file = join(dir, 'c.yaml');
    writeFileSync(file, 'preset: tiny\nsft:\n  steps: 5\n  lr: 0.002\ntrain:\n  algos: [dpo, p3o-v2]\n');
    const cfg = buildConfig({ file, flags: flags({ 'sft.steps': '9' }) });
    expect(cfg.preset).toBe('tiny');
    expect(cfg.sft.steps).toBe(9); // flag beats file
    expect(cfg.sft.lr).toBe(0.002); // file beats preset
    expect(cfg.sft.batchSize).toBe(PRESETS.tiny.sft!.batchSize); // preset beats defaults
    expect(cfg.train.algos).toEqual(['dpo', 'p3o-v2']);
    expect(problemsOf(() => buildConfig({ file, flags: flags({ 'sft.steps': 'abc' }) }))[0]).toMatch(
      /^sft\.steps must be a whole number \(got 'abc'\)/,
    );
    expect(problemsOf(() => buildConfig({ flags: flags({ 'sft.stepz': '3' }) }))[0]).toContain(
      "unknown key 'sft.stepz'",
    );
  });

  it('reads JSON files and reports syntax errors with their line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'relign-config-'));
    const json = join(dir, 'c.json');
    writeFileSync(json, JSON.stringify({ reward: { steps: 4 } }));
    expect(buildConfig({ file: json }).reward.steps).toBe(4);
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'sft:\n  steps: 3\n   lr: [1, 2\n');
    const [p] = problemsOf(() => readConfigFile(bad));
    expect(p).toMatch(/^not valid YAML at line \d+/);
    const badJson = join(dir, 'bad.json');
    writeFileSync(badJson, '{"sft": {"steps": 3,}}');
    expect(problemsOf(() => readConfigFile(badJson))[0]).toMatch(/^not valid JSON/);
    const list = join(dir, 'list.yaml');
    writeFileSync(list, '- 1\n- 2\n');
    expect(problemsOf(() => readConfigFile(list))[0]).toContain('must hold a mapping');
    expect(problemsOf(() => readConfigFile(join(dir, 'missing.yaml')))[0]).toContain(
      'cannot read the config file',
    );
  });
});

describe('prototype pollution', () => {
  const polluted = () => (Object.prototype as Record<string, unknown>).temperature;
  afterEach(() => {
    // If a refusal regresses, do not leave every object of the test process polluted.
    delete (Object.prototype as Record<string, unknown>).temperature;
  });

  it.each([
    '__proto__.temperature',
    'constructor.prototype.temperature',
    'train.__proto__',
    'algos.dpo.constructor',
  ])('refuses the flag --%s without touching Object.prototype', (key) => {
    const [p] = problemsOf(() => flagsToOverrides(flags({ [key]: '0' })));
    expect(p).toMatch(/'(__proto__|prototype|constructor)' is not a config key/);
    expect(p).toContain(key);
    expect(polluted()).toBeUndefined();
    expect(problemsOf(() => buildConfig({ flags: flags({ [key]: '0' }) }))[0]).toContain(key);
    expect(polluted()).toBeUndefined();
  });

  it('refuses __proto__, prototype and constructor keys in config files and objects', () => {
    const dir = mkdtempSync(join(tmpdir(), 'relign-config-'));
    const yaml = join(dir, 'c.yaml');
    writeFileSync(yaml, 'sft:\n  steps: 3\n__proto__:\n  temperature: 0\n');
    expect(problemsOf(() => readConfigFile(yaml))[0]).toMatch(/'__proto__' is not a config key/);
    const json = join(dir, 'c.json');
    writeFileSync(json, '{"train": {"constructor": {"prototype": {"temperature": 0}}}}');
    expect(problemsOf(() => buildConfig({ file: json }))[0]).toMatch(
      /'train\.constructor': 'constructor' is not a config key/,
    );
    const object = JSON.parse('{"__proto__": {"temperature": 0}}') as Record<string, unknown>;
    expect(problemsOf(() => buildConfig({ config: object }))[0]).toMatch(/'__proto__' is not a config key/);
    expect(problemsOf(() => deepMerge({}, object))[0]).toMatch(/'__proto__' is not a config key/);
    expect(problemsOf(() => validateConfig(object))[0]).toMatch(/'__proto__' is not a config key/);
    expect(polluted()).toBeUndefined();
  });

  it('builds overrides on null-prototype objects', () => {
    const o = flagsToOverrides(flags({ 'sft.steps': '3' }));
    expect(Object.getPrototypeOf(o)).toBeNull();
    expect(Object.getPrototypeOf(o.sft)).toBeNull();
    expect(Object.getPrototypeOf(deepMerge({ a: { b: 1 } }, { a: { c: 2 } }).a)).toBeNull();
  });
});
