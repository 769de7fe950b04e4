import { revealControls } from '../shared/visible-text.js';

/** One CSV record: values in column order, or an object read by column name. */
export type CsvRecord = readonly unknown[] | Readonly<Record<string, unknown>>;

const NEEDS_QUOTES = /[",\r\n]/;
const QUOTE = /"/g;

/**
 * First characters that make a spreadsheet read a cell as a formula (OWASP "CSV injection"):
 * `=`, `+`, `-` and `@` start one, and some spreadsheets skip a leading tab or carriage
 * return before looking. The SQL twin (csvTextSql in usage.repository.ts) is built from
 * this list, so the COPY exports and the ones written here cannot drift apart.
 */
export const CSV_FORMULA_TRIGGERS = ['=', '+', '-', '@', '\t', '\r'] as const;

const FORMULA_START = new Set<string>(CSV_FORMULA_TRIGGERS);

/**
 * The separators other than a comma that a spreadsheet may split a line on: `;` (Excel's list
 * separator in many European locales, which it uses to split a .csv there) and a tab. Each starts
 * a cell there, so a trigger after one starts a formula. The SQL twin (csvTextSql) is built from
 * this list too.
 */
export const CSV_OTHER_SEPARATORS = [';', '\t'] as const;

/**
 * A bracket expression of `characters` that JavaScript and PostgreSQL read alike: no escapes, a
 * `-` last (where both read it as itself).
 */
function bracketOf(characters: readonly string[]): string {
  if (characters.some((character) => ']^\\'.includes(character))) throw new Error('no ], ^ or \\ in a CSV class');
  return `[${characters.filter((c) => c !== '-').join('')}${characters.includes('-') ? '-' : ''}]`;
}

/**
 * The pattern of a separator followed by a trigger, read alike by JavaScript and PostgreSQL
 * (an ARE): the separator captured, the trigger only looked at, so `\t\t=1` escapes both tabs.
 */
export const CSV_SEPARATED_FORMULA_PATTERN = `(${bracketOf(CSV_OTHER_SEPARATORS)})(?=${bracketOf(CSV_FORMULA_TRIGGERS)})`;

const SEPARATED_FORMULA = new RegExp(CSV_SEPARATED_FORMULA_PATTERN, 'g');

/**
 * A text cell from outside (a job, user, account or partition name, a payment reference, a
 * user agent) made inert for a spreadsheet: one that would start a formula gets a leading
 * `'`, which spreadsheets read as "this is text" and do not show. So does every cell a
 * spreadsheet splitting the line on `;` or a tab would see (CSV_OTHER_SEPARATORS): such a
 * separator followed by a trigger gets a `'` after it (`x;=1+1;y` is written `x;'=1+1;y`), as a
 * quote around the field would not help there (a spreadsheet honours one only at a field's start).
 * A `;` or tab followed by anything else (`a;b`) is left as it is. For text columns only: a
 * number column keeps its minus sign (-1.50 is a number, not a formula).
 */
export function escapeCsvFormula(text: string): string;
export function escapeCsvFormula(text: string | null | undefined): string | null | undefined;
export function escapeCsvFormula(text: string | null | undefined): string | null | undefined {
  if (!text) return text;
  const inner = text.includes(';') || text.includes('\t') ? text.replace(SEPARATED_FORMULA, "$1'") : text;
  return FORMULA_START.has(inner.charAt(0)) ? `'${inner}` : inner;
}

/**
 * A text cell from outside as escapeCsvFormula makes it, with every bidirectional and terminal
 * control (REVEALED_CONTROL_RANGES) written as its JSON escape (revealControls), as the audit
 * page writes them: stored before the one-line fields refused them (a reference, a reason to
 * void) or in the audit log, a bidirectional one turned the rest of its cell around in a
 * spreadsheet, and from Slurm, an ESC in a job name ran in the terminal of whoever printed the file.
 */
export function escapeCsvText(text: string): string {
  return escapeCsvFormula(revealControls(text));
}

/**
 * A text that LibreOffice Calc and Excel, opening a CSV, read as a number or a date rather than as
 * text: digits with the separators of a number, an exponent, a date or a time; an exponent with its
 * `+` (`1E+05`); an accountant's negative in brackets (`(123)` is -123). Read so, a reference loses
 * its leading zeros, every digit after the 15th (`000123456789012345678` becomes
 * 1.23456789012346E+17) or its form (`1e5` is 100000, `2026-12-01` a date), also once saved back.
 */
const READ_AS_NUMBER = /^(?:(?:\d|\.\d)[\d.,:/eE%-]*|\d[\d.]*[eE]\+\d+|\(\d[\d.,]*\))$/;

/**
 * An identifier from outside that people match against another record (a payment reference from a
 * bank statement) made safe for a spreadsheet as escapeCsvText makes a name, and kept as text: one a
 * spreadsheet would read as a number or a date (READ_AS_NUMBER) gets a leading `'` too, as a
 * formula's first character does. Not for the usage CSVs' names, which PostgreSQL writes the same as
 * escapeCsvText does.
 */
export function escapeCsvIdentifier(text: string): string {
  return READ_AS_NUMBER.test(text) ? `'${text}` : escapeCsvText(text);
}

/**
 * A time as the usage CSVs write it (PostgreSQL's `to_char(t AT TIME ZONE 'UTC',
 * 'YYYY-MM-DD"T"HH24:MI:SS"Z"')`): UTC to the second, fractions dropped; empty for none.
 */
export function formatCsvUtcTime(time: Date | null | undefined): string {
  return time ? `${time.toISOString().slice(0, 19)}Z` : '';
}

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
