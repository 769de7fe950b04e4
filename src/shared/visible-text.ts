/**
 * How many characters of `text` show on a page or a printout: letters, digits, punctuation and
 * symbols (a combining accent counts with its letter). Zero-width spaces, joiners, direction
 * marks and other format characters are not counted, nor is whitespace, so a reason made of
 * them cannot pass a "say why" minimum.
 */
export function countVisibleCharacters(text: string): number {
  return text.match(/[\p{L}\p{N}\p{P}\p{S}]/gu)?.length ?? 0;
}
