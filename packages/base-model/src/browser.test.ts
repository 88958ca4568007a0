import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '@relign/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { baseModelDir, loadBaseModel, type BaseModel } from './index.js';
import * as browserEntry from './browser.js';

// The browser entry loads the same model from URLs or bytes (no file system): same weights, same tokenizer.
describe('@relign/base-model browser entry', () => {
  const loaded: BaseModel[] = [];
  let reference: BaseModel;
  beforeAll(async () => {
    await initBackend('cpu');
    reference = await loadBaseModel({ trainable: false });
    loaded.push(reference);
  });
  afterAll(() => loaded.forEach((b) => b.model.dispose()));

  const logitsOf = (b: BaseModel) =>
    tf.tidy(() => b.model.forward([b.tokenizer.encode('The movie was great.')]).logits.arraySync());

  it('exports the Node entry names it can serve, with URLs of the shipped files', () => {
    const urls = browserEntry.baseModelUrls();
    expect(urls.weights.href).toMatch(/\/model\/model\.safetensors$/);
    expect('baseModelDir' in browserEntry).toBe(false);
  });

  it('loadBaseModel() of the browser entry gives the Node loader’s model (from the file URLs here)', async () => {
    const b = await browserEntry.loadBaseModel({ trainable: false });
    loaded.push(b);
    expect(b.tokenizer.encode('The movie was great.')).toEqual(
      reference.tokenizer.encode('The movie was great.'),
    );
    expect(logitsOf(b)).toEqual(logitsOf(reference));
  });

  it('loads from bytes (ArrayBuffer, Uint8Array, Blob) as a page does with fetched or picked files', async () => {
    const dir = baseModelDir();
    const bytes = async (f: string) => new Uint8Array(await readFile(join(dir, f)));
    const b = await browserEntry.loadBaseModelFrom({
      config: new Blob([await bytes('config.json')]),
      weights: (await bytes('model.safetensors')).slice().buffer,
      vocab: await bytes('vocab.json'),
      merges: await bytes('merges.txt'),
    });
    loaded.push(b);
    expect(logitsOf(b)).toEqual(logitsOf(reference));
  });

  it('names the file when a source is broken', async () => {
    const urls = browserEntry.baseModelUrls();
    await expect(
      browserEntry.loadBaseModelFrom({ ...urls, config: new File(['{not json'], 'my-config.json') }),
    ).rejects.toThrow(/my-config\.json is not valid JSON/);
    await expect(
      browserEntry.loadBaseModelFrom({ ...urls, weights: new URL('file:///nonexistent/model.safetensors') }),
    ).rejects.toThrow(/cannot read file:\/\/\/nonexistent\/model\.safetensors/);
  });
});
