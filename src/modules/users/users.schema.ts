import { z } from 'zod';
import { labelFields } from '../../http/field-labels.js';
import { strictBody } from '../../http/strict-body.js';
import { ZNewPassword } from '../../shared/password-policy.js';
import { MAX_INT4, ZPageNumber, zWholeNumber } from '../../shared/whole-number.js';
import { reservedActorProblemOf } from '../audit/audit-actors.js';

const MAX_USERNAME_LENGTH = 64;

/**
 * POSIX-style login names, as Slurm and the cluster's accounts use them. Read as sign-in reads a typed
 * username (normalizedUsernameOf): trimmed and in lower case, so BOB is bob, on /admin/users and in
 * `npm run user:*` alike; refusing it said BOB could be an account other than bob, which sign-in never lets it be.
 */
export const ZUsername = z
  .string()
  .trim()
  .toLowerCase()
  .superRefine((name, context) => {
    const problem = usernameProblem(name);
    if (problem) context.addIssue({ code: 'custom', message: problem });
  });

/**
 * The name of a user being created: a ZUsername that is not an actor the audit log gives the
 * application's own entries (`cli`, `system`: reservedActorProblemOf). Only where a user is created:
 * the tools still find an account of such a name made before, to reset or disable it.
 */
export const ZNewUsername = ZUsername.superRefine((name, context) => {
  const problem = reservedActorProblemOf(name);
  if (problem) context.addIssue({ code: 'custom', message: problem });
});

/** One reason, the one to act on: a name of 70 valid letters is too long, not badly formed. */
function usernameProblem(name: string): string | undefined {
  if (name === '') return 'is required';
  if (name.length > MAX_USERNAME_LENGTH) return `must be at most ${MAX_USERNAME_LENGTH} characters`;
  if (!/^[a-z_][a-z0-9._-]*$/.test(name)) {
    return 'must start with a lowercase letter or _, then lowercase letters, digits, . _ or -';
  }
  return undefined;
}

/**
 * What to tell whoever typed `typed` when it was read as `username` in lower case (`BOB read as bob:
 * …`), to follow the field's name; undefined when it was typed so (spaces around it aside).
 */
export function usernameReadAsNoteOf(typed: string, username: string): string | undefined {
  const trimmed = typed.trim();
  if (trimmed === username) return undefined;
  return `${trimmed} read as ${username}: usernames are lower case, as sign-in reads them.`;
}

/**
 * A role, in any case (`Admin`, `ADMIN`): a username is read in lower case, and `--role Admin` was
 * refused by `npm run user:create` and a script's `"role": "Admin"` by /admin/users beside a `Zoe`
 * read as zoe. Any other role is refused naming the two.
 */
export const ZRole = z
  .string()
  .transform((role) => role.toLowerCase())
  .pipe(z.enum(['admin', 'user']));

/** The labels the Create a user form shows its fields under, which a refusal on the page names them by. */
export const CREATE_USER_FIELD_LABELS = { username: 'Username', role: 'Role', password: 'Password' } as const;

// Strict (a field they do not have is refused by name): a misspelt `Role` made an admin a user, and
// a reset's misspelt `new_password` gave the user a generated password in place of the chosen one.
export const ZCreateUserForm = strictBody(
  {
    username: ZNewUsername,
    role: ZRole.default('user'),
    // Empty: generate one and show it once.
    password: z.union([z.literal(''), ZNewPassword]).optional(),
  },
  CREATE_USER_FIELD_LABELS,
);

export const ZResetPasswordForm = strictBody(
  {
    password: z.union([z.literal(''), ZNewPassword]).optional(),
    // When the password was set as the Users page showed it (ms since 1970; empty: never stamped),
    // the page's hidden field: a reset of a password set since is refused (409). Left out (a script),
    // nothing is compared.
    based_on_password_changed_at: z
      .string()
      .regex(/^\d{0,15}$/, 'must be the whole number of milliseconds the Users page gave, or empty')
      .optional(),
  },
  { password: 'New password' },
);
export const ZChangeRoleForm = strictBody({ role: ZRole }, { role: 'Role' });
/**
 * The body of an action on a user that reads no field (disable, enable, unlock sign-in, sign out all
 * sessions, and the Account page's sign out of the others): its form sends the CSRF token alone. A
 * script's `{"reason": "left the centre"}` was answered "bob is disabled." and the reason went nowhere.
 */
export const ZNoFieldsForm = strictBody({});
/**
 * /admin/users?q=&page=: a part of a username (any case; a username's longest) and a page. Empty q
 * lists everyone.
 */
export const ZUserListQuery = labelFields(
  z.object({
    q: z
      .string()
      .trim()
      .max(MAX_USERNAME_LENGTH, `must be at most ${MAX_USERNAME_LENGTH} characters (a username's longest)`)
      .optional()
      .transform((q) => q || undefined),
    page: ZPageNumber,
  }),
  { q: 'Search', page: 'Page' },
);
export type TUserListQuery = z.infer<typeof ZUserListQuery>;

/** The roles and statuses /admin/users filters by, as its selects and its refusals name them. */
export const USER_ROLES = ['admin', 'user'] as const;
export const USER_STATUSES = ['active', 'disabled'] as const;

/**
 * One of `values`, or left out (absent, or empty: a select's "any"). `anyCase` reads it in any case, as
 * ZRole reads a role on the create and role-change forms: `?role=Admin` was refused there.
 */
function optionalChoice<T extends readonly [string, ...string[]]>(values: T, options: { anyCase?: boolean } = {}) {
  return z.preprocess(
    (value) =>
      typeof value !== 'string'
        ? value
        : value.trim() === ''
          ? undefined
          : options.anyCase
            ? value.toLowerCase()
            : value,
    z.enum(values, { error: `must be one of ${values.join(', ')}` }).optional(),
  );
}

/**
 * /admin/users?q=&role=&status=&page=: its search, and its filters by role and by status (active or
 * disabled): on a centre of thousands of users the admins, or the disabled accounts, were found only
 * by reading every page. /admin/tiers searches by name alone (ZUserListQuery).
 */
export const ZAdminUserListQuery = labelFields(
  ZUserListQuery.extend({ role: optionalChoice(USER_ROLES, { anyCase: true }), status: optionalChoice(USER_STATUSES) }),
  { q: 'Search', page: 'Page', role: 'Role', status: 'Status' },
);
export type TAdminUserListQuery = z.infer<typeof ZAdminUserListQuery>;

/** A user id in a path. */
// The number in the address of a user's actions (/admin/users/7/disable), named on a page without the route's name.
export const ZUserId = labelFields(zWholeNumber(1, MAX_INT4), { 'user id': 'User number in the address' });

// Strict, as the admin's reset: a misspelt field (`new_pasword`) beside the right ones was ignored,
// and a script could not tell a field it meant from one it had not sent. A new password equal to the
// current one is refused by the service, once the current one is proven (changeOwnPassword).
export const ZChangeOwnPasswordForm = labelFields(
  strictBody({ current: z.string().min(1, 'is required'), password: ZNewPassword, confirm: z.string() }).refine(
    (form) => form.password === form.confirm,
    { path: ['confirm'], message: 'does not match the new password' },
  ),
  { current: 'Current password', password: 'New password', confirm: 'New password again' },
);
