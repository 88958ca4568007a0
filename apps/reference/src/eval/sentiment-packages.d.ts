// Type declarations for the three CommonJS sentiment packages the evaluation uses (none ships its own).

declare module 'vader-sentiment' {
  /** VADER (Hutto & Gilbert 2014): `compound` is the normalised sum of the valence scores, in [-1, 1]. */
  const vader: {
    SentimentIntensityAnalyzer: {
      polarity_scores(text: string): { neg: number; neu: number; pos: number; compound: number };
    };
  };
  export = vader;
}

declare module 'wink-sentiment' {
  /** `normalizedScore`: mean AFINN-style valence of the sentiment words (about [-5, 5]), 0 without any. */
  function sentiment(text: string): { score: number; normalizedScore: number };
  export = sentiment;
}

declare module 'sentiment' {
  /** AFINN-165 with negation rules; `comparative` = score / number of tokens. */
  class Sentiment {
    analyze(text: string): { score: number; comparative: number };
  }
  export = Sentiment;
}
