import { z } from 'zod';
import { strictBody } from '../../http/strict-body.js';

export const ZLoginQuery = z.object({ next: z.string().max(2048).optional() });

/**
 * The sign-in form (or JSON body): a username and a password, each text, from the body only. A
 * number or a list in either failed the sign-in with a 500, and passport-local took them from the
 * query string when the body had none, where proxies and browsers' histories keep them. Strict, as
 * every other JSON body is: `"remember": true` was accepted without a word, and a script believed its
 * session would outlast the idle timeout. The form's own fields are read: its token (csrf_token, let
 * through by strictBody) and `next`, the page to go on to (destinationOf reads it).
 */
export const ZSignInForm = strictBody(
  { username: z.string().min(1), password: z.string().min(1), next: z.string().optional() },
  { username: 'Username', password: 'Password' },
);
