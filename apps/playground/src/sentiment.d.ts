// `sentiment` (AFINN-165) ships no types.
declare module 'sentiment' {
  /** `comparative` = AFINN score / number of tokens. */
  class Sentiment {
    analyze(text: string): { score: number; comparative: number };
  }
  export = Sentiment;
}
