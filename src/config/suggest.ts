// "Did you mean …?" for unknown keys, flags and environment variables: the nearest known name by
// edit distance, after folding case and the kebab/snake spellings people carry over from uWSGI/PHP-FPM.

function fold(s: string): string {
  return s.replace(/[-_.\s]/g, '').toLowerCase();
}

/** Levenshtein distance, with an early exit once every cell of a row exceeds `limit`. */
export function editDistance(a: string, b: string, limit = Infinity): number {
  if (a === b) return 0;
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      const v = Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost);
      cur.push(v);
      if (v < rowMin) rowMin = v;
    }
    if (rowMin > limit) return rowMin;
    prev = cur;
  }
  return prev[b.length] ?? Infinity;
}

/** The closest candidate, or undefined when none is plausibly what was meant. */
export function suggest(input: string, candidates: readonly string[]): string | undefined {
  const f = fold(input);
  const exact = candidates.find((c) => fold(c) === f);
  if (exact !== undefined) return exact;
  const limit = Math.max(2, Math.floor(f.length / 4));
  let best: string | undefined;
  let bestD = limit + 1;
  for (const c of candidates) {
    const d = editDistance(f, fold(c), limit);
    if (d < bestD) { best = c; bestD = d; }
  }
  return best;
}
