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

describe('doc comments', () => {
  it('no doc comment stands right above another, stranded from the item it describes', () => {
    const offenders = sourceFiles(SRC).flatMap((file) =>
      strandedDocCommentsOf(readFileSync(file, 'utf8')).map((line) => `${path.relative(SRC, file)}:${line}`),
    );
    expect(offenders).toEqual([]);
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
