/**
 * Default token estimator for one generated text delta (first version; tuned by bench/accuracy).
 */
export function estimateTokens(text: string): number {
  const n = text.length;
  if (n === 0) return 0;
  let wide = 0;
  let ws = 0;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x2e80) wide++;
    else if (c === 32 || c === 9 || c === 10 || c === 13) ws++;
  }
  const narrow = n - wide - ws;
  const est = Math.round(narrow / 4 + ws / 8 + wide * 0.7);
  return est < 1 ? 1 : est;
}
