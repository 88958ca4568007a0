/**
 * Every section that code or a README cites ("spec §4.3", "docs/algorithms.md §4.6b", and the lists that
 * follow one, "spec §2.4, §4.4") must exist as a heading of docs/algorithms.md, so that a reader can follow
 * each citation. Headings there are written `## §4 …` / `### §4.6b …`.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const DOC = join(ROOT, 'docs', 'algorithms.md');
const SELF = fileURLToPath(import.meta.url);
const SCANNED = ['packages', 'apps'];
const SKIPPED_DIRS = new Set(['node_modules', 'dist', 'coverage', '.turbo', 'models']);
const EXTENSIONS = /\.(?:[cm]?[jt]sx?|md)$/;

/** A section number: digits with dotted parts, optionally one letter (`4.6b`). */
const NUMBER = String.raw`\d+(?:\.\d+)*(?:[a-z](?![a-z]))?`;
/** `spec` or `docs/algorithms.md`, then a run of `§N` joined by commas, slashes, dashes or "and". */
const CITATION = new RegExp(
  String.raw`(?:\bspec|docs/algorithms\.md)\s+((?:§+\s*${NUMBER}(?:\s*(?:,|/|–|-|and|or|&)\s*(?=§))?)+)`,
  'gi',
);
const SECTION = new RegExp(`§+\\s*(${NUMBER})`, 'g');
const HEADING = new RegExp(String.raw`^#{1,6}\s+§(${NUMBER})(?=\s|$)`, 'gm');

function sourceFiles(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    if (SKIPPED_DIRS.has(name)) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) sourceFiles(path, out);
    else if (EXTENSIONS.test(name) && path !== SELF) out.push(path);
  }
  return out;
}

/** Joins comment continuation lines (` * ` / `// `) so a citation broken across lines is still one. */
function unwrapComments(text: string): string {
  return text.replace(/\n[ \t]*(?:\*(?!\/)|\/\/)?[ \t]*/g, ' ');
}

/** Cited section numbers of `text`. */
function citedSections(text: string): string[] {
  const found: string[] = [];
  for (const match of unwrapComments(text).matchAll(CITATION)) {
    for (const s of match[1]!.matchAll(SECTION)) found.push(s[1]!);
  }
  return found;
}

function docSections(): string[] {
  let doc: string;
  try {
    doc = readFileSync(DOC, 'utf8');
  } catch {
    throw new Error(`${DOC} is missing: it is the document that "spec §…" citations point at.`);
  }
  return [...doc.matchAll(HEADING)].map((m) => m[1]!);
}

describe('spec citations', () => {
  it('finds citations in lists and across comment lines', () => {
    expect(citedSections('see spec §2.4, §4.4 and Spec §4.6b/§1.8b')).toEqual(['2.4', '4.4', '4.6b', '1.8b']);
    expect(citedSections(' * as in the\n * spec\n * §1.9); docs/algorithms.md §3.1–§3.3')).toEqual([
      '1.9',
      '3.1',
      '3.3',
    ]);
    expect(citedSections("the spec §1.7's caveat, §9 alone, a specification §5")).toEqual(['1.7']);
  });

  it('cites docs/algorithms.md, never the design spec (which is not in the repository)', () => {
    const bare: string[] = [];
    for (const group of SCANNED) {
      for (const file of sourceFiles(join(ROOT, group))) {
        const text = unwrapComments(readFileSync(file, 'utf8'));
        for (const m of text.matchAll(/\bspec\s+§+\s*[0-9]/gi))
          bare.push(`${relative(ROOT, file)}: "${m[0]}"`);
      }
    }
    expect(bare, 'write "docs/algorithms.md §N" instead of "spec §N"').toEqual([]);
  });

  it('docs/algorithms.md has each section heading once', () => {
    const sections = docSections();
    expect(sections.length).toBeGreaterThan(0);
    const repeated = sections.filter((s, i) => sections.indexOf(s) !== i);
    expect(repeated, `sections with more than one heading in ${DOC}`).toEqual([]);
  });

  it('every cited section exists in docs/algorithms.md', () => {
    const have = new Set(docSections());
    const missing: string[] = [];
    let count = 0;
    for (const group of SCANNED) {
      for (const file of sourceFiles(join(ROOT, group))) {
        for (const section of citedSections(readFileSync(file, 'utf8'))) {
          count++;
          if (!have.has(section)) missing.push(`${relative(ROOT, file)} cites §${section}`);
        }
      }
    }
    expect(count, 'no citations found: is the scan looking in the right place?').toBeGreaterThan(0);
    expect(
      missing,
      'add these sections to docs/algorithms.md (a heading "### §N.M title") or fix the citation',
    ).toEqual([]);
  });
});
