import { stringify } from 'csv-stringify/sync';
import { describe, expect, it } from 'vitest';
import {
  escapeCsvFormula,
  escapeCsvIdentifier,
  escapeCsvText,
  formatCsvField,
  formatCsvLines,
} from '../../src/http/csv-format.js';
import { revealControls } from '../../src/shared/visible-text.js';

describe('CSV fields', () => {
  it.each([
    ['plain', 'plain'],
    ['a,b', '"a,b"'],
    ['say "hi"', '"say ""hi"""'],
    ['two\nlines', '"two\nlines"'],
    ['cr\rhere', '"cr\rhere"'],
    ['', ''],
    [null, ''],
    [undefined, ''],
    [42, '42'],
    [0.5, '0.5'],
    [12345678901234567890n, '12345678901234567890'],
    [true, '1'],
    [false, ''],
    [new Date('2025-09-15T00:00:00Z'), '1757894400000'],
    [{ a: 1, b: 'x' }, '"{""a"":1,""b"":""x""}"'],
  ])('%s is written as %j', (value, text) => {
    expect(formatCsvField(value)).toBe(text);
  });
});

describe('CSV lines', () => {
  const columns = ['job_id', 'name', 'cost', 'receipt_id'];
  const rows = [
    ['1001', 'train, big', '12.50', null],
    ['1002', 'say "x"', '0.00', 7],
    ['1003', 'multi\nline', null, undefined],
  ];

  it('writes array rows exactly as csv-stringify did, header included', () => {
    const text = formatCsvLines([columns], columns) + formatCsvLines(rows, columns);
    expect(text).toBe(stringify(rows, { header: true, columns }));
  });

  it('reads object rows by column name, in column order', () => {
    const records = [{ cost: '1.00', job_id: '9', name: 'n', receipt_id: 3, extra: 'ignored' }];
    expect(formatCsvLines(records, columns)).toBe('9,n,1.00,3\n');
    expect(formatCsvLines(records, columns)).toBe(stringify(records, { columns }));
  });

  it('writes nothing for an empty batch', () => {
    expect(formatCsvLines([], columns)).toBe('');
  });
});

describe('formula escaping of text cells (OWASP CSV injection)', () => {
  it.each([
    ['=HYPERLINK("http://x")', '"\'=HYPERLINK(""http://x"")"'],
    ['+1+2', "'+1+2"],
    ['-rf', "'-rf"],
    ['@SUM(1)', "'@SUM(1)"],
    // The leading `'` makes the cell text, and a spreadsheet splitting on the tab sees `=1` after it.
    ['\t=1', "'\t'=1"],
    ['\r=1', '"\'\r=1"'],
    ['=a,b', '"\'=a,b"'],
    ["'=already", "'=already"],
    ['train-2=x', 'train-2=x'],
    [' =1', ' =1'],
    ['plain', 'plain'],
    ['', ''],
    [null, ''],
    [undefined, ''],
    // A spreadsheet splitting the line on `;` or a tab starts a cell after each: escaped there too.
    ['x;=1+1;y', "x;'=1+1;y"],
    ['x\t=1+1\ty', "x\t'=1+1\ty"],
    ['a;+1;-2;@x', "a;'+1;'-2;'@x"],
    ['=a;=b', "'=a;'=b"],
    [';=1', ";'=1"],
    [';;-1', ";;'-1"],
    ['\t\t=1', "'\t'\t'=1"],
    ['a;\t=1', "a;'\t'=1"],
    ['a;\r=1', '"a;\'\r=1"'],
    ['x;=a,b', '"x;\'=a,b"'],
    ['x;=HYPERLINK("y")', '"x;\'=HYPERLINK(""y"")"'],
    ["a;'=1", "a;'=1"],
    ['a;b', 'a;b'],
    ['a; =1', 'a; =1'],
    ['a;', 'a;'],
    ['a\tb', 'a\tb'],
    ['train;2=x', 'train;2=x'],
  ])('the text %j is written as %j', (text, written) => {
    expect(formatCsvField(escapeCsvFormula(text))).toBe(written);
  });

  it('leaves a number column alone: a negative amount stays a number', () => {
    const columns = ['name', 'cost'];
    const line = formatCsvLines([[escapeCsvFormula('-refund'), '-1.50']], columns);
    expect(line).toBe("'-refund,-1.50\n");
    expect(formatCsvLines([[escapeCsvFormula('x'), -1.5]], columns)).toBe('x,-1.5\n');
    expect(formatCsvLines([[escapeCsvFormula('a;-1'), -1.5]], columns)).toBe("a;'-1,-1.5\n");
  });

  it('escapes a formula after a separator alike whether bidirectional controls are revealed first or not', () => {
    for (const text of ['x;\u202e=1', '\u202e;=1', ';=\u202e1', '=\u202e;+1', '\t\u2066@x;-1']) {
      const written = escapeCsvText(text);
      expect(written, JSON.stringify(text)).toBe(revealControls(escapeCsvFormula(text)));
      expect(written).not.toMatch(/[;\t][=+\-@]/);
    }
    expect(escapeCsvText('x;\u202e=1')).toBe('x;\\u202e=1');
    expect(escapeCsvText('\u202e;=1')).toBe("\\u202e;'=1");
  });

  // A reference a spreadsheet would read as a number or a date keeps its digits as text (paid.csv's tx_ref).
  it.each([
    ['000123456789012345678', "'000123456789012345678"],
    ['1e5', "'1e5"],
    ['12.50', "'12.50"],
    ['2026-12-01', "'2026-12-01"],
    ['1/2', "'1/2"],
    ['1,234.5', `"'1,234.5"`],
    ['.5', "'.5"],
    ['1E+05', "'1E+05"],
    ['(123)', "'(123)"],
    ['12:30', "'12:30"],
    ['INV-00123', 'INV-00123'],
    ['12345_7', '12345_7'],
    ['12345+0', '12345+0'],
    ['BT 0012', 'BT 0012'],
    ['=1+1', "'=1+1"],
    ['-12.50', "'-12.50"],
    ['x;=1', "x;'=1"],
    ['', ''],
  ])('the identifier %j is written as %j', (text, written) => {
    expect(formatCsvField(escapeCsvIdentifier(text))).toBe(written);
  });
});
