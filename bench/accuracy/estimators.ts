import { createEstimator, DEFAULT_WEIGHTS, estimateTokens } from '../../lib/estimate';
import { VOCABULARIES } from './streams';
import type { Vocabulary } from './streams';

/** A way to count one delta's tokens, as the middleware's `countTokens` would. */
export interface Estimator {
  name: string;
  description: string;
  /** Module whose load cost (memory) the estimator adds; measured in a child process. */
  module?: string;
  /** The counting function; `vocab` is the stream's true vocabulary, used only by "own tokenizer". */
  count(text: string, vocab: Vocabulary['name']): number;
  /** Not reproducible through the middleware today (it never asks for the count of an empty delta). */
  hypothetical?: boolean;
}

// With the empty chunks counted, an emoji delta no longer has to stand for the tokens that came before it.
const emojiAsOne = createEstimator({ ...DEFAULT_WEIGHTS, singleAstral: 1 });

export const ESTIMATORS: Estimator[] = [
  {
    name: 'one per chunk',
    description: '1 for every chunk with text',
    count: (text) => (text.length > 0 ? 1 : 0),
  },
  {
    name: 'chars/4',
    description: 'ceil(length / 4) per delta (Kong-style character heuristic)',
    count: (text) => Math.ceil(text.length / 4),
  },
  {
    name: 'o200k per delta',
    description: 'gpt-tokenizer o200k_base countTokens on each delta (opt-in tokenizer)',
    module: 'gpt-tokenizer/encoding/o200k_base',
    count: (text) => (text.length > 0 ? VOCABULARIES.o200k.encode(text).length : 0),
  },
  {
    name: 'own tokenizer per delta',
    description: "the stream's own vocabulary on each delta (the countTokens recipe with the served model's tokenizer)",
    module: 'llama3-tokenizer-js',
    count: (text, vocab) => (text.length > 0 ? VOCABULARIES[vocab].encode(text).length : 0),
  },
  {
    name: 'estimateTokens (default)',
    description: 'lib/estimate.ts: pre-token piece scan',
    module: '../../lib/estimate',
    count: (text) => estimateTokens(text),
  },
  {
    name: 'default + 1 per empty delta',
    description:
      'hypothetical: estimateTokens, plus 1 for a chunk whose delta is an empty string (a token that ends inside a ' +
      'character); shows what bounds the default on one-token streams',
    module: '../../lib/estimate',
    hypothetical: true,
    count: (text) => (text.length > 0 ? emojiAsOne(text) : 1),
  },
];
