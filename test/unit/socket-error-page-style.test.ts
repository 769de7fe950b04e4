import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CLIENT_ERROR_PAGE_CSS } from '../../src/http/lifecycle.js';

/**
 * The page of a request refused before the app saw it (431 when its cookies are too large) carries
 * its style, copied from the app's stylesheet, which it cannot link. A rule changed in
 * public/css/app.css and not in the copy would make that page look unlike the app's error pages.
 */
describe("the socket error page's style", () => {
  // From a line's start: `.card {` is not matched inside `.card.stat {`.
  const stylesheet = `\n${readFileSync(new URL('../../public/css/app.css', import.meta.url), 'utf8')}`;
  const rules = CLIENT_ERROR_PAGE_CSS.split(/(?<=\n\}\n)/).filter((rule) => rule.trim() !== '');

  it('is a few rules of the app stylesheet', () => {
    expect(rules.length).toBeGreaterThan(5);
  });

  it.each(rules.map((rule) => [rule.slice(0, rule.indexOf('{')).trim().replace(/\s+/g, ' '), rule]))(
    'has %s as public/css/app.css has it',
    (_selector, rule) => {
      expect(stylesheet).toContain(`\n${rule}`);
    },
  );
});
