import { expect } from 'vitest';
import { hiddenFieldsIn, postFormIn, visibleTextOf } from './html.js';
import { type Agent, csrfTokenIn } from './sign-in.js';

/**
 * The Void or Mark paid form of an admin's receipt page as it was rendered: its hidden fields (the stale
 * checks a tab sends back), the page's CSRF token and its visible text.
 */
export async function openAdminReceiptForm(admin: Agent, receiptId: number, form: 'void' | 'paid') {
  const page = (await admin.get(`/admin/receipts/${receiptId}`).set('Accept', 'text/html').expect(200)).text;
  const html = postFormIn(page, `/admin/receipts/${receiptId}/${form}`);
  expect(html, `the ${form === 'void' ? 'void' : 'mark paid'} form`).toBeDefined();
  return { hidden: hiddenFieldsIn(html ?? ''), csrf: csrfTokenIn(page), text: visibleTextOf(page) };
}
