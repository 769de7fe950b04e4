import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ejs from 'ejs';
import { describe, expect, it } from 'vitest';
import { VIEWS_DIR } from '../../src/app.js';
import { createViewEngine, VIEW_LOCALS } from '../../src/http/view-engine.js';
import { createViewFormatters } from '../../src/http/view-format.js';

function listViews(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? listViews(path.join(dir, entry.name)) : [path.join(dir, entry.name)],
  );
}

function render(isProduction: boolean, file: string, data: Record<string, unknown>) {
  return new Promise<string>((resolve, reject) =>
    createViewEngine({ isProduction })(file, { settings: { views: VIEWS_DIR }, ...data }, (error, html) =>
      error ? reject(error) : resolve(html ?? ''),
    ),
  );
}

describe('view engine', () => {
  it.each(listViews(VIEWS_DIR).map((file) => path.relative(VIEWS_DIR, file)))(
    'compiles %s without `with`: no view declares a name VIEW_LOCALS declares',
    (file) => {
      const source = readFileSync(path.join(VIEWS_DIR, file), 'utf8');
      expect(() =>
        ejs.compile(source, {
          filename: path.join(VIEWS_DIR, file),
          _with: false,
          destructuredLocals: [...VIEW_LOCALS],
        }),
      ).not.toThrow();
    },
  );

  it('includes partials only by absolute path under the views folder (no stat per include)', () => {
    const includes = listViews(VIEWS_DIR).flatMap((file) =>
      [...readFileSync(file, 'utf8').matchAll(/include\(\s*(['"`])(.*?)\1/g)].map((match) => ({
        view: path.relative(VIEWS_DIR, file),
        target: match[2] ?? '',
      })),
    );
    expect(includes.length).toBeGreaterThan(20);
    expect(includes.filter(({ target }) => !target.startsWith('/'))).toEqual([]);
    for (const { target } of includes) {
      expect(readdirSync(path.join(VIEWS_DIR, path.dirname(target)))).toContain(`${path.basename(target)}.ejs`);
    }
  });

  it('renders a page with app and page locals, a missing optional local reading as undefined', async () => {
    const fmt = createViewFormatters({ timeZone: 'UTC', currency: 'THB' });
    for (const isProduction of [false, true]) {
      const html = await render(isProduction, path.join(VIEWS_DIR, 'error.ejs'), {
        appName: 'HPC Billing',
        fmt,
        status: 404,
        message: 'No such receipt <b>',
      });
      expect(html).toContain('No such receipt &lt;b&gt;');
      // title is not given: the header's `typeof title` check still works.
      expect(html).toContain('<title>HPC Billing</title>');
      // Both partials, included by absolute path, are in the page.
      expect(html).toContain('</footer>');
    }
  });

  it("tells the header whether it shows a refused form's reason, in every view that can (its title starts with Error:)", () => {
    // A month-end run's page shows a failed run, which is no form of the page.
    const notAForm = new Set(['admin/month-end-run.ejs']);
    const showingRefusals = listViews(VIEWS_DIR)
      .map((file) => ({ view: path.relative(VIEWS_DIR, file), source: readFileSync(file, 'utf8') }))
      .filter(({ view, source }) => /class="alert error[^"]*" role="alert"/.test(source) && !notAForm.has(view));
    expect(showingRefusals.length).toBeGreaterThanOrEqual(12);
    for (const { view, source } of showingRefusals) {
      expect(source, view).toMatch(/include\('\/partials\/header', \{[^}]*hasFormError/);
    }
  });

  it('refuses render data it does not declare, naming it', async () => {
    await expect(render(false, path.join(VIEWS_DIR, 'error.ejs'), { status: 500, secretThing: 1 })).rejects.toThrow(
      'View data secretThing is not declared: add it to VIEW_LOCALS in view-engine.ts.',
    );
  });
});
