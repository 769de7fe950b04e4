/** One value of a PostgreSQL COPY text-format row: NULL is \N; backslash, tab, CR and LF are escaped. */
export function toCopyField(value: string | number | boolean | bigint | Date | null | undefined): string {
  if (value === null || value === undefined) return '\\N';
  if (typeof value === 'boolean') return value ? 't' : 'f';
  if (value instanceof Date) return value.toISOString();
  if (typeof value !== 'string') return String(value);
  return value.replace(/[\\\t\n\r]/g, (char) =>
    char === '\\' ? '\\\\' : char === '\t' ? '\\t' : char === '\n' ? '\\n' : '\\r',
  );
}

/** One COPY text-format line (tab-separated, newline-terminated). */
export function toCopyLine(values: readonly (string | number | boolean | bigint | Date | null | undefined)[]): string {
  return `${values.map(toCopyField).join('\t')}\n`;
}
