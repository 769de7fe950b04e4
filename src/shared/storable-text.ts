export const NUL_CHARACTER_MESSAGE = 'The request contains a NUL character (%00), which no field accepts.';

export const UNPAIRED_SURROGATE_MESSAGE =
  'The request contains an unpaired UTF-16 surrogate (a \\ud800-\\udfff escape without its other half), which no field accepts.';

const MAX_DEPTH = 32;

/**
 * Why `value` (a string, or a parsed body: its keys and strings at any depth) holds text no field
 * can store, or undefined when it holds none. PostgreSQL text cannot hold U+0000, and a lone
 * surrogate, which JSON can spell ("\ud800") but UTF-8 cannot encode, makes Prisma's engine fail
 * on the query itself ("unexpected end of hex escape"): both used to surface as a 500.
 */
export function unstorableTextIn(value: unknown, depth = 0): string | undefined {
  if (typeof value === 'string') return unstorableStringReason(value);
  if (typeof value !== 'object' || value === null || depth > MAX_DEPTH) return undefined;
  for (const [key, inner] of Object.entries(value)) {
    const reason = unstorableStringReason(key) ?? unstorableTextIn(inner, depth + 1);
    if (reason !== undefined) return reason;
  }
  return undefined;
}

function unstorableStringReason(text: string): string | undefined {
  if (text.includes('\0')) return NUL_CHARACTER_MESSAGE;
  if (!text.isWellFormed()) return UNPAIRED_SURROGATE_MESSAGE;
  return undefined;
}
