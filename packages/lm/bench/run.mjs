// `npm run bench -w @relign/lm`: one JSON object on stdout with model (forward, training step, KV-cached
// decode) and tokenizer throughput on the active backend (RELIGN_BACKEND to choose). Progress goes to stderr.
import { initBackend } from '@relign/tensor';
import * as lm from '../dist/index.js';
import { benchModel } from './model.mjs';
import { benchTokenizer } from './tokenizer.mjs';

const backend = await initBackend();
console.error(`bench: backend ${backend.name} (${backend.package})`);
const model = await benchModel(lm);
const tokenizer = await benchTokenizer(lm);
console.log(JSON.stringify({ package: '@relign/lm', backend: backend.name, model, tokenizer }, null, 2));
