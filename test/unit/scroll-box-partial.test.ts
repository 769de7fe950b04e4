import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { VIEWS_DIR } from '../../src/app.js';

function listViews(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? listViews(path.join(dir, entry.name)) : [path.join(dir, entry.name)],
  );
}

/**
 * A table's scroll box opened by hand (`<div class="table-wrap">`) had no name and no place in the
 * Tab order, as nine pages' boxes had after the first five got them: every box is opened by
 * views/partials/scroll-box.ejs, which gives them, so the next table cannot forget them.
 */
describe('the boxes tables scroll in', () => {
  it('are all opened by the scroll-box partial, named by a caption', () => {
    const views = listViews(VIEWS_DIR).map((file) => ({
      view: path.relative(VIEWS_DIR, file),
      source: readFileSync(file, 'utf8'),
    }));
    const byHand = views.filter(
      ({ view, source }) => view !== 'partials/scroll-box.ejs' && source.includes('table-wrap'),
    );
    expect(byHand.map(({ view }) => view)).toEqual([]);
    const includes = views.flatMap(({ source }) => [...source.matchAll(/include\('\/partials\/scroll-box'([^)]*)\)/g)]);
    expect(includes.length).toBeGreaterThanOrEqual(19);
    for (const [call, data] of includes) expect(data, call).toMatch(/^, \{ caption: \S/);
  });
});
