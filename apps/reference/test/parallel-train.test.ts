/**
 * Concurrent train stages (`train.parallel`, src/train-parallel.ts) through the built `relign` executable, as
 * a user runs it: the stages run in child processes and every result — final and snapshot weights, metrics,
 * result.json, evaluations, samples, the frontier — is bit-identical to the run of the same stages one after
 * another (timings aside); Ctrl-C to the process group (a terminal's) stops every child with a checkpoint,
 * exits 130, and `--resume` ends identical too; a failing stage names itself and its log, lets the stage
 * running beside it finish and starts no other.
 *
 * Needs the built app (`npm test` builds first; else `npm run build`): both sides of each comparison run the
 * same build. wasm, like the other end-to-end test; `--train.parallel 2` so that it does not depend on the cores.
 */
import { spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StageRecord } from '../src/run-dir.js';

const BIN = join(import.meta.dirname, '..', 'bin', 'relign.mjs');
const ALGOS = ['ppo-max', 'dpo', 'grpo'];
/** Four iterations (two checkpoints, a snapshot at 2) so that a Ctrl-C lands mid-stage. */
const ARGS = [
  '--preset',
  'tiny',
  '--backend',
  'wasm',
  '--train.algos',
  ALGOS.join(','),
  '--train.iterations',
  '4',
  '--train.evalEvery',
  '2',
];

interface Result {
  code: number | null;
  out: string;
}

/**
 * Runs the built CLI in its own process group; `interruptAt`: SIGINT to the whole group (as Ctrl-C in a
 * terminal) once the output matches it.
 */
function relign(args: string[], interruptAt?: RegExp): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let sent = false;
    const onData = (d: Buffer) => {
      out += d.toString();
      if (interruptAt && !sent && interruptAt.test(out)) {
        sent = true;
        process.kill(-child.pid!, 'SIGINT');
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, out }));
  });
}

const json = <T = Record<string, unknown>>(path: string): T => JSON.parse(readFileSync(path, 'utf8')) as T;
const stages = (dir: string) => json<StageRecord[]>(join(dir, 'stages.json'));

/** A JSON or JSONL file without its timings (wall-clock seconds, per-phase times, throughput). */
function untimed(path: string): unknown {
  const drop = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(drop);
    if (v === null || typeof v !== 'object') return v;
    return Object.fromEntries(
      Object.entries(v)
        .filter(([k]) => k !== 'seconds' && !k.startsWith('time/') && !k.startsWith('throughput/'))
        .map(([k, x]) => [k, drop(x)]),
    );
  };
  const text = readFileSync(path, 'utf8');
  return path.endsWith('.jsonl')
    ? text
        .trim()
        .split('\n')
        .map((l) => drop(JSON.parse(l)))
    : drop(JSON.parse(text));
}

/** Every result of the train stages and of what reads them, compared between two run directories. */
function expectSameResults(a: string, b: string): void {
  const bytes = (d: string, ...p: string[]) => readFileSync(join(d, ...p));
  for (const algo of ALGOS) {
    for (const model of ['final', join('evalpoints', 'step-2')]) {
      const path = ['train', algo, model, 'model.safetensors'];
      expect(bytes(a, ...path).equals(bytes(b, ...path)), path.join('/')).toBe(true);
    }
    for (const f of ['metrics.jsonl', 'result.json']) {
      expect(untimed(join(b, 'train', algo, f)), `${algo}/${f}`).toEqual(untimed(join(a, 'train', algo, f)));
    }
  }
  const evals = readdirSync(join(a, 'eval')).sort();
  expect(readdirSync(join(b, 'eval')).sort()).toEqual(evals);
  expect(evals).toHaveLength(1 + 2 * ALGOS.length);
  for (const f of evals) expect(untimed(join(b, 'eval', f)), f).toEqual(untimed(join(a, 'eval', f)));
  for (const f of readdirSync(join(a, 'samples'))) {
    expect(bytes(b, 'samples', f).equals(bytes(a, 'samples', f)), f).toBe(true);
  }
  expect(untimed(join(b, 'frontier', 'frontier.json'))).toEqual(
    untimed(join(a, 'frontier', 'frontier.json')),
  );
}

describe('concurrent train stages (built relign, wasm)', () => {
  const root = mkdtempSync(join(tmpdir(), 'relign-parallel-'));
  const sequential = join(root, 'sequential');
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  beforeAll(async () => {
    expect(existsSync(join(import.meta.dirname, '..', 'dist', 'bin.js')), 'run `npm run build` first').toBe(
      true,
    );
    const r = await relign([
      'run',
      ...ARGS,
      '--run-dir',
      sequential,
      '--train.parallel',
      '1',
      '--eval.parallel',
      '1',
    ]);
    expect(r.code, r.out).toBe(0);
    expect(r.out).not.toMatch(/child processes/);
  });

  it('runs them in child processes with results identical to one after another', async () => {
    const dir = join(root, 'concurrent');
    const r = await relign([
      'run',
      ...ARGS,
      '--run-dir',
      dir,
      '--train.parallel',
      '2',
      '--eval.parallel',
      '2',
    ]);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toContain('== 3 train stages, 2 at a time in child processes (train.parallel 2;');
    // The evaluation too: the SFT model here, then the six policies dealt out to two processes.
    expect(r.out).toContain('  6 policies, 2 at a time in child processes (eval.parallel 2;');
    expect(r.out).toMatch(/^\[eval 2\] eval: /m);
    // Each child's lines carry its optimizer; its whole output is in its log.
    for (const algo of ALGOS) {
      expect(r.out).toMatch(new RegExp(`^\\[${algo}\\] train ${algo}: 4/4`, 'm'));
      expect(readFileSync(join(dir, 'train', algo, 'log.txt'), 'utf8')).toContain(`train ${algo}: 4/4`);
    }
    // GRPO samples the most responses per prompt: it starts first.
    expect(r.out.indexOf('== train:grpo')).toBeLessThan(r.out.indexOf('== train:ppo-max'));
    // stages.json in pipeline order, the train stages marked as concurrent; the table's total is wall clock.
    const recs = stages(dir);
    expect(recs.map((s) => s.stage)).toEqual([
      'sft',
      'label',
      'reward',
      ...ALGOS.map((a) => `train:${a}`),
      'eval',
      'frontier',
      'report',
    ]);
    for (const s of recs) {
      expect(s.status, s.stage).toBe('done');
      expect(s.parallel, s.stage).toBe(s.stage.startsWith('train:') ? 2 : undefined);
    }
    expect(r.out).toMatch(/train:grpo +\S+ +done, 2 at a time/);
    expect(r.out).toMatch(/ {2}total +\S+ +wall clock \(the stages' times add up to /);
    // What the children wrote is recorded as relign's (a later fresh run may remove it).
    const marker = json<{ created: string[] }>(join(dir, '.relign-run.json'));
    expect(marker.created).toContain('train/grpo/final/model.safetensors');
    expect(marker.created).toContain('train/dpo/log.txt');

    expectSameResults(sequential, dir);
  });

  it('Ctrl-C stops every child with a checkpoint (exit 130); --resume ends identical', async () => {
    const dir = join(root, 'interrupted');
    const r1 = await relign(
      ['run', ...ARGS, '--run-dir', dir, '--train.parallel', '2', '--eval.parallel', '2'],
      /^\[(grpo|dpo)\] train (grpo|dpo): 1\/4/m,
    );
    expect(r1.code, r1.out).toBe(130);
    expect(r1.out).toMatch(
      /interrupted; (its checkpoint is|their checkpoints are) saved\. Continue with: relign run --resume --run-dir /,
    );
    const recs = stages(dir);
    expect(
      recs.some((s) => s.status === 'interrupted'),
      JSON.stringify(recs),
    ).toBe(true);
    expect(recs.every((s) => s.status === 'done' || s.status === 'interrupted')).toBe(true);
    expect(recs.some((s) => s.stage === 'eval')).toBe(false);
    // A stage stopped after an iteration has its checkpoint (one stopped while loading may have none).
    for (const s of recs.filter((x) => x.status === 'interrupted')) {
      const t = join(dir, 'train', s.stage.slice('train:'.length));
      const metrics = join(t, 'metrics.jsonl');
      if (existsSync(metrics) && readFileSync(metrics, 'utf8').trim() !== '') {
        expect(existsSync(join(t, 'checkpoints', 'latest.json')), s.stage).toBe(true);
      }
    }

    const r2 = await relign(['run', '--resume', '--run-dir', dir]);
    expect(r2.code, r2.out).toBe(0);
    expect(r2.out).toMatch(/resuming at iteration [1-3]\/4/);
    expect(stages(dir).every((s) => s.status === 'done')).toBe(true);
    for (const algo of ALGOS) {
      expect(
        readFileSync(join(dir, 'train', algo, 'metrics.jsonl'), 'utf8')
          .trim()
          .split('\n'),
      ).toHaveLength(4);
    }
    expectSameResults(sequential, dir);
  });

  it('a failing stage names itself and its log; the one beside it finishes, no later stage starts', async () => {
    const dir = join(root, 'failing');
    // A file of the user's where DPO's final policy goes: that stage fails at its end (and the file stays).
    mkdirSync(join(dir, 'train', 'dpo'), { recursive: true });
    writeFileSync(join(dir, 'train', 'dpo', 'final'), 'not a folder');
    const r = await relign(['run', ...ARGS, '--run-dir', dir, '--force', '--train.parallel', '2']);
    expect(r.code, r.out).toBe(1);
    const log = join(dir, 'train', 'dpo', 'log.txt');
    expect(r.out).toMatch(/relign run: train:dpo failed: .*final.*\(its output: /);
    expect(r.out).toContain(log);
    expect(readFileSync(log, 'utf8')).toMatch(/train dpo: 4\/4/);
    const recs = stages(dir);
    expect(recs.find((s) => s.stage === 'train:dpo')).toMatchObject({
      status: 'failed',
      error: expect.stringContaining('final'),
    });
    // GRPO started with DPO (both sample two responses per prompt) and finished; eval did not start.
    expect(recs.find((s) => s.stage === 'train:grpo')?.status).toBe('done');
    expect(recs.map((s) => s.stage)).not.toContain('eval');
    expect(recs.every((s) => s.status !== 'running')).toBe(true);
    expect(readFileSync(join(dir, 'train', 'dpo', 'final'), 'utf8')).toBe('not a folder');
  });
});
