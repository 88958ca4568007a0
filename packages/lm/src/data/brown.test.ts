import { describe, expect, it } from 'vitest';
import { brownParagraphs, detokenizeBrown, loadBrownCorpus } from './brown.js';

describe('Brown corpus', () => {
  it('detokenizes a hand-written tagged line', () => {
    const line =
      "``/`` Only/rb a/at handful/nn of/in reports/nns ''/'' ,/, the/at jury/nn said/vbd ,/, ``/`` was/bedz received/vbn ''/'' ./.";
    expect(detokenizeBrown(line)).toBe('"Only a handful of reports", the jury said, "was received".');
    expect(detokenizeBrown("He/pps said/vbd (/( quietly/rb )/) :/: no/at ;/. did/dod n't/* go/vb ?/.")).toBe(
      "He said (quietly): no; didn't go?",
    );
    expect(
      detokenizeBrown("the/at '/' Met/np '/' again/rb ,/, John/np 's/$ car/nn --/-- 1/2/cd mile/nn !/."),
    ).toBe("the 'Met' again, John's car -- 1/2 mile!");
    expect(detokenizeBrown('   ')).toBe('');
  });

  it('splits paragraphs on blank lines and joins their sentences', () => {
    const file = '\n\n\tThe/at dog/nn ran/vbd ./.\nIt/pps sat/vbd ./.\n\n\n\tNew/jj one/cd ./.\n';
    expect(brownParagraphs(file)).toEqual(['The dog ran. It sat.', 'New one.']);
  });

  it('loads the installed corpus with genres', async () => {
    const reviews = await loadBrownCorpus({ genres: ['reviews'] });
    expect(new Set(reviews.map((p) => p.genre))).toEqual(new Set(['reviews']));
    expect(new Set(reviews.map((p) => p.file)).size).toBe(17);
    expect(reviews.every((p) => !/\/[a-z]/.test(p.text.split(' ')[0]!))).toBe(true); // no tags left
    await expect(loadBrownCorpus({ genres: ['poetry'] })).rejects.toThrow(/unknown genre\(s\) poetry/);
  });
});
