/**
 * The playground page. URL parameters `?autorun=N&algo=<name>&backend=<wasm|webgpu>` run N iterations with
 * the default automatic reward and no clicks, then write the result as JSON into `#relign-result` (the
 * contract the browser tests use; see README "relign in the browser").
 */
import { loadBaseModel } from '@relign/base-model';
import type { CausalLM } from '@relign/lm';
import { ALGORITHMS, algorithmByName } from './algorithms.js';
import { LineChart } from './chart.js';
import { exportModel, selectBackend, type PageBackend } from './load.js';
import type { AutoRewardKind } from './rewards.js';
import { PROMPTS, sampleAnswers, TrainingSession, type RewardChoice } from './session.js';

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const SAMPLE_PROMPTS = PROMPTS.slice(0, 4);
const MAX_NEW_TOKENS = 16;

const status = (text: string) => ($('status').textContent = text);
const rewardChart = new LineChart($('charts'), 'mean reward');
const klChart = new LineChart($('charts'), 'KL to the base model');

function showSamples(listId: string, answers: readonly string[]): void {
  const list = $(listId);
  list.replaceChildren(
    ...answers.map((a, i) => {
      const li = document.createElement('li');
      const b = document.createElement('b');
      b.textContent = SAMPLE_PROMPTS[i]!;
      li.append(b, a);
      return li;
    }),
  );
}

/** Shows two answers and resolves with the one the person clicks. */
function askPreference(prompt: string, a: string, b: string): Promise<0 | 1> {
  $('preference').hidden = false;
  $('pref-prompt').textContent = prompt;
  $('pref-a').textContent = prompt + a;
  $('pref-b').textContent = prompt + b;
  return new Promise((resolve) => {
    const pick = (choice: 0 | 1) => () => {
      $('preference').hidden = true;
      resolve(choice);
    };
    $('pref-a').onclick = pick(0);
    $('pref-b').onclick = pick(1);
  });
}

function downloadFile(name: string, data: Uint8Array | string, type: string): void {
  const url = URL.createObjectURL(new Blob([data as BlobPart], { type }));
  const a = Object.assign(document.createElement('a'), { href: url, download: name });
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

async function main(): Promise<void> {
  const params = new URLSearchParams(location.search);
  const autorun = params.has('autorun') ? Number(params.get('autorun')) : 0;
  const wanted = params.get('backend') ?? undefined;
  if (wanted !== undefined && wanted !== 'wasm' && wanted !== 'webgpu') {
    throw new Error(`backend=${wanted}: use wasm or webgpu (or leave it out for the best available).`);
  }
  if (params.has('autorun') && !(Number.isInteger(autorun) && autorun >= 1)) {
    throw new Error(`autorun=${params.get('autorun')}: give a whole number of iterations >= 1.`);
  }

  const select = $<HTMLSelectElement>('algo');
  select.append(...ALGORITHMS.map((a) => new Option(a.label, a.name)));
  select.value = algorithmByName(params.get('algo') ?? 'p3o-v2').name;

  const backend = await selectBackend(wanted as PageBackend | undefined);
  $('backend').textContent =
    backend.name + (backend.adapter ? ` (${backend.adapter.description || backend.adapter.vendor})` : '');
  // The bundled base model (Vite copies its files into dist/assets): the frozen reference of every run, and
  // the starting point of each run's policy (a trainable copy).
  const { model: base, tokenizer } = await loadBaseModel({ trainable: false });
  let policy: CausalLM = base.clone({ trainable: true });
  showSamples('before', await sampleAnswers(base, tokenizer, SAMPLE_PROMPTS, MAX_NEW_TOKENS));
  status('Ready: choose an optimizer and a reward, then Train.');

  let session: TrainingSession | undefined;
  let current = { label: '', iterations: 0 };
  const rewards: number[] = [];

  /** Runs the session until done or paused (started by Train, continued by Resume). */
  const runSession = async (label: string, iterations: number) => {
    current = { label, iterations };
    $('pause').textContent = 'Pause';
    $<HTMLButtonElement>('pause').disabled = false;
    $<HTMLButtonElement>('start').disabled = true;
    await session!.run();
    $<HTMLButtonElement>('start').disabled = false;
    $<HTMLButtonElement>('download').disabled = false;
    if (session!.done) {
      $<HTMLButtonElement>('pause').disabled = true;
      status(`${label}: done, ${iterations} iterations.`);
    } else {
      status(`${label}: paused after iteration ${session!.trainer.stepsDone}/${iterations}.`);
    }
    showSamples('after', await sampleAnswers(policy, tokenizer, SAMPLE_PROMPTS, MAX_NEW_TOKENS));
  };

  const train = async (iterations: number, reward: RewardChoice, promptsPerIteration: number) => {
    session?.dispose();
    if (session) {
      // Every run starts from the base model.
      policy.dispose();
      policy = base.clone({ trainable: true });
    }
    rewardChart.clear();
    klChart.clear();
    rewards.length = 0;
    const algorithm = algorithmByName(select.value);
    if (reward.kind === 'preference' && !algorithm.pairwise) {
      throw new Error(
        `${algorithm.label} samples one answer per prompt; choose a pairwise optimizer to compare two.`,
      );
    }
    session = new TrainingSession({
      policy,
      reference: base,
      tokenizer,
      algorithm,
      reward,
      iterations,
      promptsPerIteration,
      maxNewTokens: MAX_NEW_TOKENS,
      onIteration: (step, m) => {
        rewards.push(m['reward/mean'] ?? NaN);
        rewardChart.push(m['reward/mean'] ?? NaN);
        klChart.push(m['objective/kl'] ?? NaN);
        status(`${algorithm.label}: iteration ${step}/${iterations}`);
      },
    });
    await runSession(algorithm.label, iterations);
    return algorithm;
  };

  const guard = (fn: () => Promise<unknown>) => () =>
    fn().catch((err: unknown) => {
      status(`Error: ${(err as Error).message}`);
      console.error(err);
    });

  $('start').onclick = guard(() => {
    const kind = document.querySelector<HTMLInputElement>('input[name=reward]:checked')!.value;
    const reward: RewardChoice =
      kind === 'preference'
        ? { kind, ask: askPreference }
        : { kind: kind as AutoRewardKind, word: $<HTMLInputElement>('word').value };
    return train(
      Number($<HTMLInputElement>('iterations').value),
      reward,
      Number($<HTMLInputElement>('prompts').value),
    );
  });
  $('pause').onclick = guard(async () => {
    if (!session) return;
    if ($('pause').textContent === 'Pause') {
      session.pause();
      $('pause').textContent = 'Resume';
      status('Pausing after this iteration…');
    } else {
      await runSession(current.label, current.iterations);
    }
  });
  $('download').onclick = guard(async () => {
    const files = await exportModel(policy);
    downloadFile('model.safetensors', files.safetensors, 'application/octet-stream');
    downloadFile('config.json', files.config, 'application/json');
  });
  $<HTMLButtonElement>('start').disabled = false;

  if (autorun > 0) {
    $<HTMLInputElement>('iterations').value = String(autorun);
    $<HTMLInputElement>('prompts').value = '8';
    const algorithm = await train(autorun, { kind: 'sentiment' }, 8);
    const result = {
      done: true,
      backend: backend.name,
      algo: algorithm.name,
      iterations: session!.trainer.stepsDone,
      rewardFirst: rewards[0],
      rewardLast: rewards.at(-1),
    };
    $('relign-result').textContent = JSON.stringify(result);
    $('relign-result').hidden = false;
  }
}

main().catch((err: unknown) => {
  status(`Error: ${(err as Error).message}`);
  // An embedding page or test waiting on #relign-result learns of the failure instead of timing out.
  $('relign-result').textContent = JSON.stringify({
    done: false,
    error: String((err as Error)?.message ?? err),
  });
  console.error(err);
});
