import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SRC, sourceFiles } from '../support/source-files.js';

/**
 * The lines (1-based) of a doc comment that ends right above another: code added between a doc
 * comment and the item it described leaves it on top of the new item's own, saying nothing of
 * either, and the item it described without one.
 */
function strandedDocCommentsOf(source: string): number[] {
  const lines = source.split('\n');
  return lines.flatMap((line, index) => {
    const next = lines[index + 1];
    return line.trim().endsWith('*/') && next?.trim().startsWith('/**') ? [index + 1] : [];
  });
}

/**
 * The lines (1-based) of exported functions with no doc comment above them. An overload's later
 * signatures and its body share the first signature's comment.
 */
function undocumentedExportsOf(source: string): number[] {
  const lines = source.split('\n');
  const isExportedFunction = (line: string | undefined) => /^export (async )?function\*? /.test(line ?? '');
  return lines.flatMap((line, index) => {
    if (!isExportedFunction(line)) return [];
    const above = lines[index - 1] ?? '';
    const isOverload = isExportedFunction(above) && above.trimEnd().endsWith(';');
    return above.trim().endsWith('*/') || isOverload ? [] : [index + 1];
  });
}

describe('doc comments', () => {
  it('no doc comment stands right above another, stranded from the item it describes', () => {
    const offenders = sourceFiles(SRC).flatMap((file) =>
      strandedDocCommentsOf(readFileSync(file, 'utf8')).map((line) => `${path.relative(SRC, file)}:${line}`),
    );
    expect(offenders).toEqual([]);
  });

  it('every exported function has a doc comment (the style: one line at least)', () => {
    const offenders = sourceFiles(SRC).flatMap((file) =>
      undocumentedExportsOf(readFileSync(file, 'utf8')).map((line) => `${path.relative(SRC, file)}:${line}`),
    );
    expect(offenders).toEqual([]);
  });

  it("sees an exported function without a doc comment, and lets an overload share its first signature's", () => {
    expect(undocumentedExportsOf('const a = 1;\nexport function run() {}')).toEqual([2]);
    expect(undocumentedExportsOf('// why\nexport async function run() {}')).toEqual([2]);
    expect(undocumentedExportsOf('/** Runs. */\nexport function run() {}')).toEqual([]);
    expect(
      undocumentedExportsOf(
        '/** Runs. */\nexport function run(a: string): string;\nexport function run(a?: string): string | undefined {}',
      ),
    ).toEqual([]);
  });

  it('sees a one-line or a block doc comment stranded above another, and lets a comment above its item through', () => {
    expect(strandedDocCommentsOf('/** Lists runs. */\n/** The run. */\nfunction run() {}')).toEqual([1]);
    expect(strandedDocCommentsOf('  /**\n   * Lists.\n   */\n  /** The run. */\n  function run() {}')).toEqual([3]);
    expect(
      strandedDocCommentsOf('/** Lists runs. */\nfunction list() {}\n\n/** The run. */\nfunction run() {}'),
    ).toEqual([]);
    expect(strandedDocCommentsOf('// why this is so\n/** The run. */\nfunction run() {}')).toEqual([]);
  });
});
