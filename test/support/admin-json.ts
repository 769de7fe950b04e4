import { expect } from 'vitest';
import type { Agent } from './sign-in.js';

/**
 * An admin page that answers JSON clients still gives a browser (which accepts both) its HTML, and a
 * researcher asking it for JSON the 403 `{error, code}`, never the admin's data.
 */
export async function expectPageForBrowsersAndNoJsonForResearchers(admin: Agent, researcher: Agent, path: string) {
  const both = await admin.get(path).set('Accept', 'text/html,application/json').expect(200);
  expect(both.headers['content-type']).toMatch(/^text\/html/);
  const refused = await researcher.get(path).set('Accept', 'application/json').expect(403);
  expect(refused.body).toEqual({ error: expect.any(String), code: 403 });
}
