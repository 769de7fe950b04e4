import { z } from 'zod';

/**
 * The one length rule for every password a person chooses: the bootstrap admin
 * (ADMIN_PASSWORD), /admin/users, `npm run user:*` and /account/password. Twelve, not NIST
 * SP 800-63B's floor of 8: any of these can make an admin, passwords are the only factor,
 * and the sign-in lockout slows guessing but does not stop a leaked hash being cracked.
 * Sign-in itself checks no length, so a password set under an older rule still works.
 */
export const MIN_PASSWORD_LENGTH = 12;

// argon2 hashes any length; the cap keeps one request from making it hash megabytes.
export const MAX_PASSWORD_LENGTH = 1024;

/** A new password, with the same wording wherever it is refused. */
export const ZNewPassword = z
  .string()
  // Nothing typed is a password left out, not one too short: "at least 12 characters" would
  // send the user counting the characters of a field they never filled.
  .min(1, { error: 'is required', abort: true })
  // One reason at a time: three spaces are too short, which says enough.
  .min(MIN_PASSWORD_LENGTH, { error: `must be at least ${MIN_PASSWORD_LENGTH} characters`, abort: true })
  .max(MAX_PASSWORD_LENGTH, `must be at most ${MAX_PASSWORD_LENGTH} characters`)
  // Spaces count toward the length (passphrases), but only spaces is a password nobody chose:
  // a form filled by a key held down, or a script's unset variable padded out.
  .refine((password) => /\S/.test(password), 'must not be only spaces');
