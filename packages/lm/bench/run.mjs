// `npm run bench -w @relign/lm`: one JSON object on stdout with model (forward, training step, KV-cached
// decode), tokenizer throughput and full vs LoRA fine-tuning (memory, step time) on the active backend
// (RELIGN_BACKEND to choose). Progress goes to stderr.
import { initBackend } from '@relign/tensor';
import * as lm from '../dist/index.js';
import { benchLora } from './lora.mjs';
import { benchModel } from './model.mjs';
import { benchTokenizer } from './tokenizer.mjs';
import { benchEnvironment } from '../../../scripts/bench-env.mjs';

const backend = await initBackend();
const environment = await benchEnvironment(backend);
console.error(`bench: backend ${backend.name} (${backend.package}), threads ${environment.threads ?? '-'}`);
const model = await benchModel(lm);
const tokenizer = await benchTokenizer(lm);
const lora = await benchLora(lm);
console.log(
  JSON.stringify(
    { package: '@relign/lm', backend: backend.name, environment, model, tokenizer, lora },
    null,
    2,
  ),
);
