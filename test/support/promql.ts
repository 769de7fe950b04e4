// PromQL words that are not metric names (functions are recognised by the '(' after them).
const KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'and',
  'or',
  'unless',
  'offset',
  'inf',
  'nan',
]);

/**
 * The metric names a PromQL expression reads. Good enough for our dashboards and rules:
 * it drops strings, label matchers, ranges, grouping clauses and Grafana variables,
 * then keeps the identifiers that are neither keywords nor function calls.
 */
export function metricNamesIn(expression: string): string[] {
  const stripped = expression
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\$\{?\w+\}?/g, ' ')
    .replace(/\boffset\s+\S+/g, ' ');
  const names = new Set<string>();
  for (const match of stripped.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const word = match[0];
    const after = stripped.slice((match.index ?? 0) + word.length).trimStart();
    if (after.startsWith('(') || KEYWORDS.has(word.toLowerCase())) continue;
    names.add(word);
  }
  return [...names];
}

/** Each place an expression reads a metric: the selector as written, and its `{…}` matchers ('' without). */
export function metricSelectorsIn(expression: string): { selector: string; matchers: string }[] {
  const selectors: { selector: string; matchers: string }[] = [];
  for (const name of metricNamesIn(expression)) {
    const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    for (const match of expression.matchAll(new RegExp(`(?<![\\w:"])${escaped}(?![\\w:])\\s*(\\{[^}]*\\})?`, 'g'))) {
      selectors.push({ selector: match[0].trim(), matchers: match[1] ?? '' });
    }
  }
  return selectors;
}
