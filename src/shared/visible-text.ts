/**
 * How many characters of `text` show on a page or a printout: letters, digits, punctuation and
 * symbols (a combining accent counts with its letter). Zero-width spaces, joiners, direction
 * marks and other format characters are not counted, nor is whitespace, so a reason made of
 * them cannot pass a "say why" minimum.
 */
export function countVisibleCharacters(text: string): number {
  return text.match(/[\p{L}\p{N}\p{P}\p{S}]/gu)?.length ?? 0;
}

/**
 * The controls text from outside is shown and exported with as their escapes (revealControls):
 * - every C0 control but tab, LF and CR (plain white space, which only moves a terminal's cursor), DEL and
 *   the C1 controls (U+0080-U+009F): ESC starts an ANSI sequence and U+009B is one (CSI) in some
 *   terminals, so a job name holding them, written raw into a CSV, recoloured a terminal, set its
 *   title or wrote a link when an admin ran `cat` or `head` on the file;
 * - the bidirectional embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069): each turns
 *   the order of the text after it around until its paragraph ends, figures included, so a
 *   right-to-left override in a void's reason showed the audit entry's "releasedJobs":76 as 67.
 *   The marks (LRM, RLM) only place punctuation, and stay.
 * The usage CSVs reveal the same list in SQL (csvTextSql in usage.repository.ts).
 */
export const REVEALED_CONTROL_RANGES = [
  [0x00, 0x08],
  [0x0b, 0x0c],
  [0x0e, 0x1f],
  [0x7f, 0x9f],
  [0x202a, 0x202e],
  [0x2066, 0x2069],
] as const;

const REVEALED_CONTROLS = new RegExp(
  `[${REVEALED_CONTROL_RANGES.map(([first, last]) => `\\u{${first.toString(16)}}-\\u{${last.toString(16)}}`).join('')}]`,
  'gu',
);

/**
 * `text` with every control of REVEALED_CONTROL_RANGES written as its JSON escape (\u001b, \u202e,
 * lower-case), which shows, and does nothing to a terminal or the order of the text. A backslash
 * already there is left as it is. The usage CSVs write the same text in SQL (csvTextSql in
 * usage.repository.ts, built from REVEALED_CONTROL_RANGES).
 */
export function revealControls(text: string): string {
  return text.replace(REVEALED_CONTROLS, (control) => `\\u${control.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * Text a page edits in a one-line field, which drops line breaks (as HTML requires of a text
 * input): no control character at all, tabs included, nor Unicode's line and paragraph separators
 * (U+2028, U+2029: line breaks too, which the rule let through), nor a bidirectional control. Sent anyway
 * (JSON, or a tab pasted from a spreadsheet row), it was stored as sent and came back another text
 * at the next save, or split a CSV row over two lines.
 */
export const ONE_LINE_TEXT = /^[^\p{Cc}\u2028\u2029\u202a-\u202e\u2066-\u2069]*$/u;

/** What a field refused by ONE_LINE_TEXT is told. */
export const ONE_LINE_RULE = 'must be one line of text, without line breaks, tabs or other control characters';
