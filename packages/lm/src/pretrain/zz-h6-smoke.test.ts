import { it } from 'vitest';
import { useBackend } from '@relign/tensor/testing';
import { loadDefaultPretrainCorpus } from './corpus.js';
import { pretrain } from './pretrain.js';
it('smoke', async () => {
  await useBackend('wasm');
  const t0 = performance.now();
  const corpus = await loadDefaultPretrainCorpus();
  const r = await pretrain({ train: corpus.train, heldOut: corpus.heldOut, maxSeconds: 150 - (performance.now() - t0) / 1000, warmupSteps: 20, evalEvery: 40, outDir: '/tmp/h6-smoke-out', dataDescription: corpus.description, log: (l) => console.log(l) });
  console.log(JSON.stringify({ steps: r.train.steps, held: r.heldOut, uni: r.unigram, secs: r.train.seconds, total: (performance.now() - t0) / 1000 }));
  r.model.dispose();
}, 600_000);
