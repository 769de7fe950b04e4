import { z } from 'zod';

/** POSIX-style login names, as Slurm and the cluster's accounts use them. */
export const ZUsername = z
  .string()
  .trim()
  .regex(
    /^[a-z_][a-z0-9._-]{0,63}$/,
    'must start with a lowercase letter or _, then lowercase letters, digits, . _ or -',
  );

export const ZNewPassword = z
  .string()
  .min(8, 'must be at least 8 characters')
  .max(1024, 'must be at most 1024 characters');

export const ZRole = z.enum(['admin', 'user']);

export const ZCreateUserForm = z.object({
  username: ZUsername,
  role: ZRole.default('user'),
  // Empty: generate one and show it once.
  password: z.union([z.literal(''), ZNewPassword]).optional(),
});

export const ZResetPasswordForm = z.object({ password: z.union([z.literal(''), ZNewPassword]).optional() });
export const ZChangeRoleForm = z.object({ role: ZRole });
export const ZUserIdParam = z.object({ id: z.coerce.number().int().positive() });

export const ZChangeOwnPasswordForm = z
  .object({ current: z.string().min(1, 'is required'), password: ZNewPassword, confirm: z.string() })
  .refine((form) => form.password === form.confirm, { path: ['confirm'], message: 'does not match the new password' })
  .refine((form) => form.password !== form.current, {
    path: ['password'],
    message: 'must differ from the current password',
  });
