/** One CSV record: values in column order, or an object read by column name. */
export type CsvRecord = readonly unknown[] | Readonly<Record<string, unknown>>;

const NEEDS_QUOTES = /[",\r\n]/;
const QUOTE = /"/g;

/**
 * One field as csv-stringify writes it with its defaults (the format the exports had
 * before): null and undefined empty, booleans 1 or empty, dates as epoch ms, objects as
 * JSON, and quotes only around a value holding a comma, a quote or a line break.
 */
export function formatCsvField(value: unknown): string {
  let text: string;
  switch (typeof value) {
    case 'string':
      text = value;
      break;
    case 'number':
    case 'bigint':
      return String(value);
    case 'boolean':
      return value ? '1' : '';
    case 'undefined':
      return '';
    default:
      if (value === null) return '';
      text = value instanceof Date ? String(value.getTime()) : JSON.stringify(value);
  }
  return NEEDS_QUOTES.test(text) ? `"${text.replace(QUOTE, '""')}"` : text;
}

/** Lines (each ending in \n) for a batch of records, in `columns` order. */
export function formatCsvLines(records: readonly CsvRecord[], columns: readonly string[]): string {
  const lines = new Array<string>(records.length);
  for (let row = 0; row < records.length; row++) {
    const record = records[row] as CsvRecord;
    const values = Array.isArray(record)
      ? record
      : columns.map((column) => (record as Readonly<Record<string, unknown>>)[column]);
    let line = '';
    for (let index = 0; index < values.length; index++) {
      if (index > 0) line += ',';
      line += formatCsvField(values[index]);
    }
    lines[row] = line;
  }
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}
