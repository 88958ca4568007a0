import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createSha256 as browserSha256, nodePath, randomHex } from './browser.js';
import { JsSha256 } from './sha256.js';

const nodeDigest = (parts: (string | Uint8Array)[]) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
};

describe('JsSha256 (the browser side of createSha256)', () => {
  it('matches node:crypto on the FIPS vectors and on every padding boundary', () => {
    expect(new JsSha256().update('abc').digest('hex')).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
    expect(new JsSha256().digest('hex')).toBe(nodeDigest([]));
    for (let n = 0; n <= 200; n++) {
      const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 31 + n) & 255);
      expect(browserSha256().update(bytes).digest('hex'), `length ${n}`).toBe(nodeDigest([bytes]));
    }
  });

  it('is incremental: split updates give the one-shot digest (strings as UTF-8)', () => {
    const parts = ['config:{"n":1};', new Uint8Array(1000).fill(7), 'héllo', new Uint8Array(63).fill(1)];
    const h = new JsSha256();
    for (const p of parts) h.update(p);
    expect(h.digest('hex')).toBe(nodeDigest(parts));
  });
});

describe('the browser file stand-in', () => {
  it('joins paths without node:path and makes random hex names', () => {
    expect(nodePath.join('run', 'step-1/', 'model.safetensors')).toBe('run/step-1/model.safetensors');
    expect(nodePath.dirname('/a/b/c.json')).toBe('/a/b');
    expect(nodePath.basename('/a/b/c.json')).toBe('c.json');
    expect(nodePath.relative('/cache/snapshots/abc', '/cache/blobs/x')).toBe('../../blobs/x');
    expect(nodePath.resolve('/a/b', '../c/./d')).toBe('/a/c/d');
    expect(randomHex(6)).toMatch(/^[0-9a-f]{12}$/);
  });

  it('rejects file calls with an error that names the call and the browser alternative', async () => {
    const { nodeFs } = await import('./browser.js');
    await expect(nodeFs.readFile('/x/config.json', 'utf8')).rejects.toThrow(
      /fs\.readFile\(\) needs a file system.*loadCausalLM/s,
    );
  });
});
