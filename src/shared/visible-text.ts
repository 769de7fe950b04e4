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
 * Text a page edits in a one-line field, which drops line breaks (as HTML requires of a text
 * input): no control character at all, tabs included. Sent anyway (JSON, or a tab pasted from a
 * spreadsheet row), it was stored as sent and came back another text at the next save, or split a
 * CSV row over two lines.
 */
export const ONE_LINE_TEXT = /^\P{Cc}*$/u;

/** What a field refused by ONE_LINE_TEXT is told. */
export const ONE_LINE_RULE = 'must be one line of text, without line breaks, tabs or other control characters';
