import { type Request, type Response, Router } from 'express';
import type { Db } from '../../db/database.js';
import { auditContextOf } from '../../http/audit-context.js';
import { prefersJson } from '../../http/error-handler.js';
import { moneyJson } from '../../http/json-money.js';
import { linkTo } from '../../http/page-links.js';
import {
  answerChange,
  answerCreated,
  answerHeadWithoutWork,
  type BackLink,
  isRefusedForm,
  offerWayBack,
  sessionUserOf,
  typedIn,
} from '../../http/route-helpers.js';
import { parseInput } from '../../http/validate.js';
import type { ViewFormatters } from '../../http/view-format.js';
import { counted } from '../../shared/counted.js';
import {
  AppError,
  InvalidFieldsError,
  invalidFieldsOf,
  readableMessageOf,
  TooManyRequestsError,
} from '../../shared/errors.js';
import type { Guards } from '../auth/auth.guards.js';
import type { AuthServiceDeps } from '../auth/auth.service.js';
import { type createPassport, signInOnNewSession } from '../auth/passport.js';
import {
  USER_ROLES,
  USER_STATUSES,
  usernameReadAsNoteOf,
  ZAdminUserListQuery,
  ZChangeOwnPasswordForm,
  ZChangeRoleForm,
  ZCreateUserForm,
  ZNoFieldsForm,
  ZResetPasswordForm,
  ZUserId,
} from './users.schema.js';
import * as usersService from './users.service.js';

/** The pages' formatters (money as the pages write it: 1,500.75). */
const fmtOf = (req: Request) => req.app.locals.fmt as ViewFormatters;

/** A user as JSON answers show them: what a script needs to find and change them again. */
function userAnswerOf(user: usersService.UserRecord) {
  return { id: user.id, username: user.username, role: user.role, isDisabled: user.isDisabled };
}

/**
 * A page of /admin/users as JSON: its search and filters (null when not given), each user as the page
 * shows them (named from the columns the repository selects, never the row, so a password hash cannot
 * come along), and the paging.
 */
function usersListJson(query: usersService.UserListQuery, list: Awaited<ReturnType<typeof usersService.listUsers>>) {
  return {
    q: query.search ?? null,
    role: query.role ?? null,
    status: query.status ?? null,
    page: list.page,
    pageCount: list.pageCount,
    count: list.count,
    users: list.users.map((user) => ({
      ...userAnswerOf(user),
      createdAt: user.createdAt.toISOString(),
      lockedUntil: user.lockedUntil?.toISOString() ?? null,
    })),
  };
}

/** A password the app generated for a user it created (`isNewUser`) or reset: shown once, on the answer's page. */
interface GeneratedPassword {
  username: string;
  password: string;
  isNewUser: boolean;
  /** Sentences said after it (a reset that lifted a sign-in lock, or of a disabled account, says so). */
  note?: string;
  /** A new user's name as typed, when it was read in lower case (`note` says so): JSON answers carry both. */
  usernameAsTyped?: string;
}

/**
 * Where an action on a user lands the admin: the list searched for their name, where they come
 * first (/admin/users?q=zoe), whichever page of the whole list they are on.
 */
function usersPageOf(username: string): string {
  return linkTo('/admin/users', { q: username }, {});
}

/** The search and filters of a list of users as its links carry them (`q`, `role`, `status`). */
function usersListFiltersOf(query: Omit<usersService.UserListQuery, 'page'>) {
  return { q: query.search, role: query.role, status: query.status };
}

/**
 * Where a user that cannot be listed or changed (a refused query, a page past the last, a form posted
 * to a user deleted since or an id edited by hand) sends the admin: the list that finds them.
 */
const USERS: BackLink = { href: '/admin/users', text: 'Open the list of users' };

/** What changing your own password did: sessions elsewhere are named only when there were any to end. */
function describePasswordChange(endedSessions: number): string {
  if (endedSessions === 0) return 'Your password was changed.';
  const verb = endedSessions === 1 ? 'was' : 'were';
  return `Your password was changed. ${counted(endedSessions, 'other session')} ${verb} signed out.`;
}

/** What Sign out of all other sessions did, said to the user who did it (an admin's own too). */
function describeOwnSessionsEnd(endedSessions: number): string {
  if (endedSessions === 0) return 'No other session of yours was signed in. This one stays signed in.';
  const verb = endedSessions === 1 ? 'was' : 'were';
  return `${counted(endedSessions, 'other session')} ${verb} signed out. This one stays signed in.`;
}

/**
 * After "alice is now an admin.": a promotion signs the user's sessions out (usersService.changeRole),
 * so the admin knows alice must sign in again before the admin pages open for her. A disabled account
 * (disabled from another tab since this page was opened) has no session left and cannot sign in: said so.
 */
function promotionSignOutNote(endedSessions: number, isDisabled: boolean): string {
  if (isDisabled) return ` ${usersService.DISABLED_ACCOUNT_PROMOTION_NOTE}`;
  if (endedSessions === 0) return ' The admin pages open at their next sign-in.';
  const verb = endedSessions === 1 ? 'was' : 'were';
  return ` ${counted(endedSessions, 'signed-in session')} ${verb} signed out: the admin pages open at their next sign-in.`;
}

/** What an admin's Sign out all sessions did to another user. */
function describeSessionsEndOf(username: string, endedSessions: number): string {
  if (endedSessions === 0) return `No session of ${username} was signed in, so none was signed out.`;
  const verb = endedSessions === 1 ? 'was' : 'were';
  return `${counted(endedSessions, 'session')} of ${username} ${verb} signed out.`;
}

/**
 * Keeps the session of a request that ended the user's other sessions signed in, under a new id and
 * CSRF secret, as a sign-in does: whoever holds a copy of the old id is out with the others. Its
 * lifetime still counts from its sign-in (a reset or a sign-out proves no password), and it stays
 * checked against the password it was signed in with, or `passwordChangedAt`, the one just set.
 */
function keepSignedInOnNewId(
  passport: ReturnType<typeof createPassport>,
  req: Request,
  res: Response,
  options: { now: Date; passwordChangedAt?: number | null },
): Promise<void> {
  const signedIn = {
    at: req.session.signedInAt ?? options.now.getTime(),
    passwordChangedAt: 'passwordChangedAt' in options ? options.passwordChangedAt : req.session.passwordChangedAt,
    sessionEpoch: req.session.sessionEpoch,
    signedInAsAdminAt: req.session.signedInAsAdminAt,
  };
  return new Promise<void>((resolve, reject) =>
    signInOnNewSession(passport, req, res, sessionUserOf(req), signedIn, (error) => {
      if (error) return reject(error);
      // Seen now, not at its sign-in: the idle limit would end a session signed in long ago at once.
      req.session.lastSeenAt = options.now.getTime();
      resolve();
    }),
  );
}

/** Admin user management (/admin/users) and the signed-in user's own account page (/account). */
export function usersRoutes(deps: {
  db: Db;
  guards: Guards;
  auth: AuthServiceDeps;
  passport: ReturnType<typeof createPassport>;
}): Router {
  const { db, guards, auth, passport } = deps;
  const router = Router();

  router.get('/account', guards.requireUser, (req, res) => {
    // A HEAD (a link checker, `curl -I`): its GET's status and type, the page not rendered.
    if (req.method === 'HEAD') {
      answerHeadWithoutWork(res, prefersJson(req));
      return;
    }
    // A script asks who it is signed in as; /me's JSON is usage, not the account. It gets the session's
    // CSRF token too: GET /login's is the visit's, refused once signed in, so a script had to read one
    // out of a page's HTML to create a receipt or start a payment. Only this origin can read the answer.
    if (prefersJson(req)) {
      const { username, role } = sessionUserOf(req);
      res.json({ username, role, csrfToken: req.csrfToken() });
      return;
    }
    res.render('users/account', { title: 'Your account', error: undefined, invalidFields: [] });
  });

  router.post('/account/password', guards.requireUser, async (req, res, next) => {
    const user = sessionUserOf(req);
    let endedSessions: number;
    let passwordChangedAt: number;
    let sessionEpoch: number;
    try {
      const form = parseInput(ZChangeOwnPasswordForm, req.body);
      const change = { current: form.current, password: form.password, sessionId: req.sessionID };
      ({ endedSessions, passwordChangedAt, sessionEpoch } = await usersService.changeOwnPassword(
        auth,
        user,
        change,
        auditContextOf(req),
      ));
    } catch (error) {
      // Refused (invalid, wrong current password, locked): the form again, with the reason;
      // JSON clients get {error, code} like everywhere else.
      if (!isRefusedForm(req, error, [400, 429])) throw error;
      if (error instanceof TooManyRequestsError && error.retryAfterSec !== undefined) {
        res.set('Retry-After', String(error.retryAfterSec));
      }
      return res.status(error.status).render('users/account', {
        title: 'Your account',
        error: readableMessageOf(error),
        invalidFields: invalidFieldsOf(error),
      });
    }
    // Proving the password is a sign-in: this session goes on under a new id (no fixation).
    const signedIn = {
      at: auth.now().getTime(),
      passwordChangedAt,
      sessionEpoch,
      signedInAsAdminAt: req.session.signedInAsAdminAt,
    };
    signInOnNewSession(passport, req, res, user, signedIn, (signInError) => {
      if (signInError) return next(signInError);
      answerChange(req, res, {
        json: { endedSessions },
        flash: { type: 'success', message: describePasswordChange(endedSessions) },
        location: '/account',
      });
    });
  });

  // Sign out everywhere else (a lab computer left signed in): the others end, this one goes on under a new id.
  router.post('/account/sign-out-others', guards.requireUser, async (req, res) => {
    parseInput(ZNoFieldsForm, req.body);
    const user = sessionUserOf(req);
    const now = auth.now();
    const { endedSessions } = await usersService.endSessions(db, user.id, auditContextOf(req), {
      userId: user.id,
      sessionId: req.sessionID,
      now,
    });
    await keepSignedInOnNewId(passport, req, res, { now });
    answerChange(req, res, {
      json: { endedSessions },
      flash: { type: 'success', message: describeOwnSessionsEnd(endedSessions) },
      location: '/account',
    });
  });

  /*
   * A generated password is shown in the answer to the POST itself, not through the flash:
   * the flash lives in the session's row until the next page, and from there in backups and
   * WAL. A reload asks the browser to post again, which would generate another password.
   */
  async function showUsersWithSecret(req: Request, res: Response, status: number, generated: GeneratedPassword) {
    if (prefersJson(req)) {
      const { username, password, usernameAsTyped, note } = generated;
      // `ok` and `message` as every other change to a user answers (answerChange, answerCreated): it
      // was {username, password} alone, and a lock the reset lifted was said on the page only. The
      // message is the one a chosen password's answer has, never the password.
      const done = generated.isNewUser ? `Created ${username}.` : `Password of ${username} changed.`;
      res.status(status).json({
        ok: true,
        username,
        password,
        ...(usernameAsTyped ? { usernameAsTyped, note } : {}),
        message: note ? `${done} ${note}` : done,
      });
      return;
    }
    res.status(status);
    await renderUsers(res, { generated }, { search: generated.username, page: 1 });
  }

  /**
   * The users page; `refused` brings a refused new user back with its reason and what was typed,
   * `generated` shows a password the app just made, once; `query` is the search and page listed.
   */
  async function renderUsers(
    res: Response,
    shown: {
      refused?: { error: string; form: { username: string; role: string }; invalid: string[] };
      generated?: GeneratedPassword;
      /** Why a change to a listed user (role, disable) was refused. */
      refusedChange?: string;
    } = {},
    query: usersService.UserListQuery = { page: 1 },
  ) {
    const list = await usersService.listUsers(db, query, auth.now());
    res.render('users/admin-users', {
      title: 'Users',
      list,
      users: list.users,
      search: query.search ?? '',
      userFilters: { role: query.role ?? '', status: query.status ?? '', roles: USER_ROLES, statuses: USER_STATUSES },
      matched: usersService.userListMatchOf(query),
      link: (changes: Record<string, unknown>) => linkTo('/admin/users', usersListFiltersOf(query), changes),
      error: shown.refused?.error,
      form: shown.refused?.form,
      invalidFields: shown.refused?.invalid,
      generated: shown.generated,
      refusedChange: shown.refusedChange,
    });
  }

  /**
   * A refused role change or disable (409: the last active admin) comes back as the users page
   * saying why, not an error page. The last active admin can only be the one asking, so the list
   * is searched for them, as after a change that worked; JSON clients get {error, code}.
   */
  async function refuseUserChange(req: Request, res: Response, error: unknown, search?: string): Promise<boolean> {
    if (!isRefusedForm(req, error, [409])) return false;
    res.status(error.status);
    await renderUsers(
      res,
      { refusedChange: `Not changed. ${readableMessageOf(error)}` },
      { search: search ?? sessionUserOf(req).username, page: 1 },
    );
    return true;
  }

  router.get('/admin/users', guards.requireAdmin, async (req, res) => {
    // A refused query or a page past the last is the error page: it leads back to the list, not only to the start.
    offerWayBack(res, USERS);
    const { q, page, role, status } = parseInput(ZAdminUserListQuery, req.query);
    const query = { search: q, role, status, page };
    if (q || role || status) {
      offerWayBack(res, { href: linkTo('/admin/users', usersListFiltersOf(query), {}), text: 'Go to page 1' });
    }
    // A HEAD (a link checker, `curl -I`): its GET's status and type, the query checked (400) and the
    // users found counted for a later page (404 past the last), none read, nor their sign-in locks.
    if (req.method === 'HEAD') {
      await usersService.checkUserListPage(db, query);
      answerHeadWithoutWork(res, prefersJson(req));
      return;
    }
    // A script gets the list as JSON, as the other admin lists answer it; refusals were already {error, code}.
    if (prefersJson(req)) {
      res.json(usersListJson(query, await usersService.listUsers(db, query, auth.now())));
      return;
    }
    await renderUsers(res, {}, query);
  });

  router.post('/admin/users', guards.requireAdmin, async (req, res) => {
    let created: Awaited<ReturnType<typeof usersService.createUser>>;
    // BOB is read as bob (ZUsername), as sign-in reads it, and the answer says so.
    let readAs: { usernameAsTyped: string; note: string } | undefined;
    try {
      const form = parseInput(ZCreateUserForm, req.body);
      const typed = typedIn(req.body, 'username') ?? form.username;
      const note = usernameReadAsNoteOf(typed, form.username);
      readAs = note ? { usernameAsTyped: typed.trim(), note: `Username ${note}` } : undefined;
      created = await usersService.createUser(
        db,
        { username: form.username, role: form.role, password: form.password || undefined, usernameAsTyped: typed },
        auditContextOf(req),
      );
    } catch (caught) {
      // A name that is taken is said with the other reasons, not once they are fixed.
      const error =
        caught instanceof InvalidFieldsError
          ? await usersService.withTakenUsername(db, caught, typedIn(req.body, 'username'))
          : caught;
      // A refused user (bad name, short password, name taken) comes back as the form with the
      // reason and what was typed, the password excepted; JSON clients get {error, code}.
      if (!isRefusedForm(req, error, [400, 409])) throw error;
      res.status(error.status);
      // A name taken: the list shows whose it is, with their buttons (Enable, for an account disabled when
      // its researcher left), where its first page of everyone rarely had them.
      const takenName = error.status === 409 ? error.details?.username : undefined;
      return renderUsers(
        res,
        {
          refused: {
            error: readableMessageOf(error),
            form: {
              username: typedIn(req.body, 'username') ?? '',
              role: typedIn(req.body, 'role') === 'admin' ? 'admin' : 'user',
            },
            invalid: invalidFieldsOf(error),
          },
        },
        typeof takenName === 'string' ? { search: takenName, page: 1 } : undefined,
      );
    }
    const { user, generatedPassword } = created;
    if (generatedPassword) {
      return showUsersWithSecret(req, res, 201, {
        username: user.username,
        password: generatedPassword,
        isNewUser: true,
        ...readAs,
      });
    }
    answerCreated(req, res, {
      // Never the password the client chose: it has it, and answers are printed and logged more than requests.
      json: { user: userAnswerOf(user), ...(readAs ? { usernameAsTyped: readAs.usernameAsTyped } : {}) },
      message: readAs ? `Created ${user.username}. ${readAs.note}` : `Created ${user.username}.`,
      location: usersPageOf(user.username),
    });
  });

  router.post('/admin/users/:id/password', guards.requireAdmin, async (req, res) => {
    offerWayBack(res, USERS);
    const id = parseInput(ZUserId, req.params.id, 'user id');
    const form = parseInput(ZResetPasswordForm, req.body);
    const admin = sessionUserOf(req);
    // Their own: this session stays, as after a change of one's own password. Ended with the
    // others, it sent the admin to the sign-in form unexplained, the confirmation (or the
    // generated password's page) the last page they saw signed in.
    const isOwn = id === admin.id;
    const basedOn = form.based_on_password_changed_at;
    let reset: Awaited<ReturnType<typeof usersService.resetPassword>>;
    try {
      reset = await usersService.resetPassword(db, id, form.password || undefined, auditContextOf(req), {
        keepSessionId: isOwn ? req.sessionID : undefined,
        now: auth.now(),
        basedOnPasswordChangedAt: basedOn === undefined ? undefined : basedOn === '' ? null : Number(basedOn),
        formatTime: (req.app.locals.fmt as ViewFormatters).dateTime,
      });
    } catch (error) {
      // Set again since the page was opened: the page again at that user, whose form now starts from
      // the password set since, so the admin can still reset it, knowingly.
      const username = error instanceof AppError ? error.details?.username : undefined;
      if (await refuseUserChange(req, res, error, typeof username === 'string' ? username : undefined)) return;
      throw error;
    }
    const { user, generatedPassword, passwordChangedAt, lockedUntil, endedLocks } = reset;
    // Ended by hand, as an unlock's: the pruner will never count them.
    auth.metrics.authLockoutEnd.inc(endedLocks);
    const notes = [
      ...(lockedUntil ? ['Their sign-in lock was lifted.'] : []),
      ...(user.isDisabled ? [usersService.DISABLED_ACCOUNT_PASSWORD_NOTE] : []),
    ].join(' ');
    if (isOwn) await keepSignedInOnNewId(passport, req, res, { now: auth.now(), passwordChangedAt });
    if (generatedPassword) {
      return showUsersWithSecret(req, res, 200, {
        username: user.username,
        password: generatedPassword,
        isNewUser: false,
        note: notes || undefined,
      });
    }
    answerChange(req, res, {
      json: { user: userAnswerOf(user) },
      flash: { type: 'success', message: `Password of ${user.username} changed.${notes ? ` ${notes}` : ''}` },
      location: usersPageOf(user.username),
    });
  });

  router.post('/admin/users/:id/role', guards.requireAdmin, async (req, res) => {
    offerWayBack(res, USERS);
    const id = parseInput(ZUserId, req.params.id, 'user id');
    const { role } = parseInput(ZChangeRoleForm, req.body);
    let user: usersService.UserRecord;
    let isChanged: boolean;
    let endedSessions: number;
    try {
      ({ user, isChanged, endedSessions } = await usersService.changeRole(db, id, role, auditContextOf(req)));
    } catch (error) {
      if (await refuseUserChange(req, res, error)) return;
      throw error;
    }
    // An admin who made themselves a user can no longer open the users page: sent there, the
    // guard refused it, put its warning in place of this confirmation and audited a forbidden attempt.
    const isNoLongerAdmin = user.id === sessionUserOf(req).id && user.role !== 'admin';
    answerChange(req, res, {
      json: { user: userAnswerOf(user), isChanged, endedSessions },
      flash: isChanged
        ? {
            type: 'success',
            message: `${user.username} is now ${role === 'admin' ? `an admin.${promotionSignOutNote(endedSessions, user.isDisabled)}` : 'a user.'}`,
          }
        : {
            type: 'warning',
            message: `${user.username} is already ${role === 'admin' ? 'an admin' : 'a user'}; nothing was changed.`,
          },
      location: isNoLongerAdmin ? '/me' : usersPageOf(user.username),
    });
  });

  // Every session of the user ends; an admin's own account keeps the session asking, as on /account.
  router.post('/admin/users/:id/sign-out-all', guards.requireAdmin, async (req, res) => {
    offerWayBack(res, USERS);
    const id = parseInput(ZUserId, req.params.id, 'user id');
    parseInput(ZNoFieldsForm, req.body);
    const now = auth.now();
    const { user, endedSessions, isOwn } = await usersService.endSessions(db, id, auditContextOf(req), {
      userId: sessionUserOf(req).id,
      sessionId: req.sessionID,
      now,
    });
    if (isOwn) await keepSignedInOnNewId(passport, req, res, { now });
    answerChange(req, res, {
      json: { user: userAnswerOf(user), endedSessions },
      flash: {
        type: 'success',
        message: isOwn ? describeOwnSessionsEnd(endedSessions) : describeSessionsEndOf(user.username, endedSessions),
      },
      location: usersPageOf(user.username),
    });
  });

  router.post('/admin/users/:id/unlock', guards.requireAdmin, async (req, res) => {
    offerWayBack(res, USERS);
    const id = parseInput(ZUserId, req.params.id, 'user id');
    parseInput(ZNoFieldsForm, req.body);
    const { user, lockedUntil, endedLocks } = await usersService.unlockSignIn(db, id, auditContextOf(req), auth.now());
    // The pruner counts the locks that run out; these were ended by hand and will never reach it.
    auth.metrics.authLockoutEnd.inc(endedLocks);
    const wasLocked = lockedUntil !== null;
    answerChange(req, res, {
      json: { user: userAnswerOf(user), wasLocked },
      flash: wasLocked
        ? { type: 'success', message: `Sign-in of ${user.username} unlocked.` }
        : { type: 'warning', message: `Sign-in of ${user.username} was not locked.` },
      location: usersPageOf(user.username),
    });
  });

  for (const [action, isDisabled] of [
    ['disable', true],
    ['enable', false],
  ] as const) {
    router.post(`/admin/users/:id/${action}`, guards.requireAdmin, async (req, res) => {
      offerWayBack(res, USERS);
      const id = parseInput(ZUserId, req.params.id, 'user id');
      parseInput(ZNoFieldsForm, req.body);
      let user: usersService.UserRecord;
      let isChanged: boolean;
      let pendingReceipts: usersService.PendingReceipts | null;
      try {
        ({ user, isChanged, pendingReceipts } = await usersService.setDisabled(
          db,
          id,
          isDisabled,
          auditContextOf(req),
          sessionUserOf(req).id,
        ));
      } catch (error) {
        if (await refuseUserChange(req, res, error)) return;
        throw error;
      }
      const done = `${user.username} is ${isDisabled ? 'disabled' : 'enabled'}.`;
      // Pending receipts the user can no longer see or pay: said after the confirmation, with the list of them.
      const pending = pendingReceipts && {
        message: usersService.describePendingReceipts(user.username, pendingReceipts, fmtOf(req).money),
        url: usersService.pendingReceiptsPathOf(user.username),
      };
      answerChange(req, res, {
        json: {
          user: userAnswerOf(user),
          isChanged,
          ...(pendingReceipts && pending
            ? {
                pendingReceipts: {
                  count: pendingReceipts.count,
                  totals: pendingReceipts.totals.map(({ currency, total }) => ({
                    currency,
                    total: moneyJson(total, currency),
                  })),
                  url: pending.url,
                },
              }
            : {}),
        },
        flash: isChanged
          ? {
              type: 'success',
              message: pending ? `${done} ${pending.message}` : done,
              ...(pending
                ? { link: { href: pending.url, text: `Open the pending receipts of ${user.username}` } }
                : {}),
            }
          : {
              type: 'warning',
              message: `${user.username} is already ${isDisabled ? 'disabled' : 'enabled'}; nothing was changed.`,
            },
        location: usersPageOf(user.username),
      });
    });
  }

  return router;
}
