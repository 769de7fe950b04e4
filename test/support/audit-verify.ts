import { expect } from 'vitest';
import { type Agent, csrfTokenOf } from './sign-in.js';

/**
 * Verifies the audit chain as the audit page's button does: POST /admin/audit/verify with a token of
 * the agent's session (a GET only shows the last verdict). Expects `status`; the response.
 */
export async function postAuditVerify(agent: Agent, accept: string, status = 200) {
  const token = await csrfTokenOf(agent, '/admin/audit/verify');
  const response = await agent.post('/admin/audit/verify').set('Accept', accept).set('X-CSRFToken', token);
  expect(response.status, response.text.slice(0, 300)).toBe(status);
  return response;
}
