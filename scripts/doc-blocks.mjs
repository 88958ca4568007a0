// The TypeScript code blocks of the docs, as files that check-packages.mjs compiles against the packed packages,
// so that documentation cannot drift from the API.
//
// Every ```ts block of the root README.md, packages/*/README.md, apps/*/README.md and packages/core/CONTRIBUTING.md
// is checked. A block becomes its own ES module (`export {}` is added). Three markers, all rare:
//   ```ts no-check             a fragment that is not code (pseudo-code of a signature): skipped;
//   ```ts file=src/index.ts    written under that name, so that another block of the same document can import it;
//   <!-- ts-setup: declare const policy: import('@relign/lm').CausalLM; -->
//                              on the line(s) right above a block: declarations it assumes (a reader's own
//                              variables), invisible in the rendered page.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The documents whose blocks are checked, relative to `root`. */
export function docFiles(root) {
  const files = ['README.md', 'packages/core/CONTRIBUTING.md'];
  for (const group of ['packages', 'apps']) {
    if (!existsSync(join(root, group))) continue;
    for (const dir of readdirSync(join(root, group)).sort()) {
      if (existsSync(join(root, group, dir, 'README.md'))) files.push(`${group}/${dir}/README.md`);
    }
  }
  return files.filter((f) => existsSync(join(root, f)));
}

const FENCE = /^```(\w+)([^\n]*)$/;

/**
 * Blocks of one document: `{ doc, line, file, setup, code, skip }`, `file` being the path the block is written
 * to inside the document's own folder.
 */
export function extractBlocks(root, doc) {
  const lines = readFileSync(join(root, doc), 'utf8').split('\n');
  const blocks = [];
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE.exec(lines[i]);
    if (!open) continue;
    let end = i + 1;
    while (end < lines.length && !lines[end].startsWith('```')) end++;
    if (open[1] === 'ts' || open[1] === 'typescript') {
      const info = open[2].trim().split(/\s+/).filter(Boolean);
      const fileAttr = info.find((w) => w.startsWith('file='));
      // The setup comment ends on the line right above the fence (it may span several lines).
      const above = lines.slice(0, i).join('\n').trimEnd();
      const start = above.lastIndexOf('<!-- ts-setup:');
      const adjacent = start >= 0 && above.indexOf('-->', start) === above.length - 3;
      const setup = adjacent ? above.slice(start + '<!-- ts-setup:'.length, -3).trim() : '';
      blocks.push({
        doc,
        line: i + 1,
        file: fileAttr ? fileAttr.slice('file='.length) : `block-${i + 1}.ts`,
        setup,
        code: lines.slice(i + 1, end).join('\n'),
        skip: info.includes('no-check'),
      });
    }
    i = end;
  }
  return blocks;
}

/**
 * Points each compiler message about a written block file back at its document and line. `written` maps the
 * file's path (as tsc prints it, relative to the project) to `{ block, setupLines }`.
 */
export function mapDiagnostics(output, written) {
  return output
    .split('\n')
    .map((line) => {
      const m = /^(\S+?)\((\d+),(\d+)\): (.*)$/.exec(line);
      const hit = m && written.get(m[1]);
      if (!hit) return line;
      const docLine = hit.block.line + Number(m[2]) - hit.setupLines;
      return `${hit.block.doc}:${docLine}:${m[3]} (${m[1]}): ${m[4]}`;
    })
    .join('\n');
}
