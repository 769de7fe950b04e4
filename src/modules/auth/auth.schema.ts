import { z } from 'zod';
import { labelFields } from '../../http/field-labels.js';

export const ZLoginQuery = z.object({ next: z.string().max(2048).optional() });

/**
 * The sign-in form (or JSON body): a username and a password, each text, from the body only. A
 * number or a list in either failed the sign-in with a 500, and passport-local took them from the
 * query string when the body had none, where proxies and browsers' histories keep them.
 */
export const ZSignInForm = labelFields(z.object({ username: z.string().min(1), password: z.string().min(1) }), {
  username: 'Username',
  password: 'Password',
});
