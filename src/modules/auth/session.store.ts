import type { Request } from 'express';
import session from 'express-session';
import type pg from 'pg';
import { ACCOUNT_DISABLED_MESSAGE, PASSWORD_SIGN_OUTS, type PasswordSignOut } from '../../shared/errors.js';

/** The signed-in user as the session row's join read them, with the row. */
export interface LoadedSessionUser {
  id: number;
  username: string;
  role: 'admin' | 'user';
  isDisabled: boolean;
}

declare module 'express-session' {
  interface SessionData {
    /**
     * Read together with the session row on every request (never stored): passport's
     * deserializeUser takes it instead of reading the user again.
     */
    loadedUser?: LoadedSessionUser;
    /**
     * When the password the session was signed in with was set (epoch ms, or null): the user's
     * `password_changed_at` then. A change or reset of the password sets another, and from its
     * commit the session is not served, however its sign-in interleaved with the change.
     * Sessions signed in before this was stored have none and are not checked.
     */
    passwordChangedAt?: number | null;
    /**
     * The user's `session_epoch` as the sign-in's check read it, with the account enabled. Disabling
     * raises it, so a sign-in whose password was checked just before a disable, and whose row was
     * written after the disable had signed the user's rows out, is never served: not while the
     * account is disabled, nor once it is enabled again. Sessions signed in before this was stored
     * have none and are not checked.
     */
    sessionEpoch?: number;
  }
}

const DEFAULT_TTL_SEC = 24 * 60 * 60;

/*
 * Every signed-in request reads its session, and the user it points at must be read
 * fresh too (a disabled account stops at once). One named statement does both: one
 * round trip instead of two, and PostgreSQL plans it once per connection instead of
 * once per request. The passport id is guarded by a pattern so a hand-edited row
 * cannot make the cast fail.
 */
const GET_SESSION: Omit<pg.QueryConfig, 'values'> = {
  name: 'session-get',
  text: `SELECT s.sess, u.id AS user_id, u.username, u.role::text AS role, u.is_disabled, u.password_changed_at,
                u.session_epoch
           FROM "session" s
           LEFT JOIN users u
             ON u.id = CASE WHEN s.sess #>> '{passport,user}' ~ '^[0-9]{1,9}$'
                            THEN (s.sess #>> '{passport,user}')::int END
          WHERE s.sid = $1 AND s.expire >= to_timestamp($2)`,
};

const SET_SESSION: Omit<pg.QueryConfig, 'values'> = {
  name: 'session-set',
  text: `INSERT INTO "session" (sess, expire, sid) VALUES ($1, to_timestamp($2), $3)
         ON CONFLICT (sid) DO UPDATE SET sess = $1, expire = to_timestamp($2)`,
};

/** A row's sign-in state, in the form sessionStateOf gives a request's copy of it. */
const SESSION_STATE_OF_ROW = `jsonb_build_array(sess #>> '{passport,user}', sess -> 'signedOutBy',
                                  sess -> 'isAccountDisabled', sess -> 'disabledUsername')`;

/*
 * A session read from the table is written back only over its own row: if the row is gone (a
 * sign-out in another tab, the prune), the request that loaded it before must not bring it back.
 * An upsert did: a slow request of a signed-out session that wrote its last-seen time as it
 * answered put the signed-in row back, and its cookie worked again. And only while the row is
 * signed in, or signed out, as the request found it ($4, sessionStateOf): an admin disabling the
 * user, or a change or reset of the password, signs the row out meanwhile (users.repository.ts
 * signOutSessionsOf, signOutOtherSessionsOf), and writing the request's copy over it signed it in
 * again. A disable also rewrites the rows such a sign-out left, saying the account is disabled; a
 * request of one of those, read before the disable (the sign-in page, /rates, taking the earlier
 * message), wrote the earlier reason back over it, and its holder was sent to sign in to a disabled
 * account. The check and the write are one statement, so nothing can end the row between them. A
 * request never signs a stored session in or out itself: signing in makes a new session, and
 * signing out deletes the row.
 */
const UPDATE_SESSION: Omit<pg.QueryConfig, 'values'> = {
  name: 'session-update',
  text: `UPDATE "session" SET sess = $1, expire = to_timestamp($2)
          WHERE sid = $3
            AND ${SESSION_STATE_OF_ROW} = $4::jsonb`,
};

/*
 * Signs out a session found signed in with a password changed since (its sign-in's check ran before the
 * change, its row was written after the change signed the user's sessions out): written as the change
 * leaves the sessions it signed out (users.repository.ts signOutOtherSessionsOf), if still signed in as
 * found. Another request of the same session may have written it meanwhile; it is signed out all the same.
 */
const SIGN_OUT_STALE_PASSWORD: Omit<pg.QueryConfig, 'values'> = {
  name: 'session-sign-out-stale-password',
  text: `UPDATE "session" SET sess = $2::jsonb
          WHERE sid = $1 AND sess #>> '{passport,user}' IS NOT DISTINCT FROM $3::text`,
};

/*
 * Deletes a session's row only while it is signed in, or signed out, as its request found it
 * ($2, sessionStateOf), as UPDATE_SESSION writes it: a disable of the user (or a change of the
 * password) that signed the row out after the request read it wrote why, and deleting that row
 * told its holder only "Your session ended". One statement, so nothing can sign the row out
 * between the check and the delete.
 */
const DESTROY_SESSION_AS_READ: Omit<pg.QueryConfig, 'values'> = {
  name: 'session-destroy-as-read',
  text: `DELETE FROM "session"
          WHERE sid = $1
            AND ${SESSION_STATE_OF_ROW} = $2::jsonb`,
};

/* Whether the account a disable signed a session out of is still disabled (only such sessions ask). */
const IS_USER_DISABLED: Omit<pg.QueryConfig, 'values'> = {
  name: 'session-marked-user-disabled',
  text: 'SELECT is_disabled FROM users WHERE username = $1',
};

const DESTROY_SESSION: Omit<pg.QueryConfig, 'values'> = {
  name: 'session-destroy',
  text: `DELETE FROM "session" WHERE sid = $1`,
};

interface SessionRow {
  sess: session.SessionData;
  user_id: number | null;
  username: string | null;
  role: 'admin' | 'user' | null;
  is_disabled: boolean | null;
  password_changed_at: Date | null;
  session_epoch: number | null;
}

/**
 * Sessions in Postgres (shared by workers and replicas, kept across restarts), in the
 * table and format connect-pg-simple used, so sessions survive the switch. Touching
 * is a no-op: the idle timeout is enforced from `lastSeenAt` in the session itself.
 */
export class PostgresSessionStore extends session.Store {
  private readonly pool: pg.Pool;
  /** How long a row lives after its last write when its cookie carries no expiry. */
  private readonly ttlSec: number;
  /**
   * Sessions read from or written to the table by this process (only these can have a row), with
   * how their row was signed in or out then (sessionStateOf).
   */
  private readonly storedSessions = new WeakMap<object, string>();

  constructor(pool: pg.Pool, options: { ttlSec?: number } = {}) {
    super();
    this.pool = pool;
    this.ttlSec = options.ttlSec ?? DEFAULT_TTL_SEC;
  }

  override createSession(req: Request, data: session.SessionData): session.Session & session.SessionData {
    const loaded = super.createSession(req, data);
    this.storedSessions.set(loaded, sessionStateOf(data));
    return loaded;
  }

  /** Whether `data` was read from the table or written to it by this process: only such a session has a row. */
  isStored(data: object): boolean {
    return this.storedSessions.has(data);
  }

  /**
   * A visitor's session is made for the request and never stored (the sign-in form keeps its
   * CSRF secret in a cookie), so at sign-in there is no row to delete: the DELETE is skipped,
   * one round trip of every sign-in. A loaded or saved session (one an attacker could have
   * planted) is deleted as express-session does, before the new id is made.
   */
  override regenerate(req: Request, callback: (error?: unknown) => void): void {
    if (this.storedSessions.has(req.session)) {
      super.regenerate(req, callback);
      return;
    }
    (this as unknown as { generate(req: Request): void }).generate(req);
    callback();
  }

  /**
   * Ends a signed-in session the idle or absolute limit ended (src/http/session.ts), as regenerate
   * does, unless its row was signed out since the request read it: a disable of the user (or a
   * change of the password) committed meanwhile. Then the row is kept, the request goes on with the
   * session it now holds (saying why it was signed out), and `isReplaced` is false.
   */
  endSession(req: Request, callback: (error?: unknown, isReplaced?: boolean) => void): void {
    const storedAs = this.storedSessions.get(req.session);
    if (storedAs === undefined) {
      req.session.regenerate((error) => callback(error, true));
      return;
    }
    const sid = req.sessionID;
    this.pool.query({ ...DESTROY_SESSION_AS_READ, values: [sid, storedAs] }).then(({ rowCount }) => {
      if (rowCount === 1) return this.generateFor(req, callback);
      this.get(sid, (error, data) => {
        if (error) return callback(error);
        // Gone (signed out elsewhere, or a disable's mark of a user enabled again): ended as before.
        if (!data) return this.generateFor(req, callback);
        // Still signed in (written in a form the check does not read alike): ended whatever it holds.
        if (signedInUserOf(data) !== null) return req.session.regenerate((failed) => callback(failed, true));
        this.createSession(req, data);
        callback(undefined, false);
      });
    }, callback);
  }

  private generateFor(req: Request, callback: (error?: unknown, isReplaced?: boolean) => void): void {
    (this as unknown as { generate(req: Request): void }).generate(req);
    callback(undefined, true);
  }

  override get(sid: string, callback: (error: unknown, data?: session.SessionData | null) => void): void {
    this.pool.query<SessionRow>({ ...GET_SESSION, values: [sid, Date.now() / 1000] }).then(({ rows }) => {
      const row = rows[0];
      if (!row) return callback(null, null);
      const data = row.sess;
      // A change or reset of the password signs the user's other sessions out, but a sign-in with
      // the old password checked just before it writes its session after that: the stamp tells it
      // apart, and it is signed out as the change signed the others out, saying why. Answered as no
      // session, it was told only "Sign in to continue.", as if it had timed out. Which of the two it
      // raced is not kept; a change is the likelier (the owner shutting out whoever knew the password).
      if (row.user_id !== null && isSignedInWithOtherPassword(data, row.password_changed_at)) {
        const reason: PasswordSignOut = 'password_change';
        const signedOut: session.SessionData = {
          cookie: data.cookie,
          flash: { type: 'warning', message: PASSWORD_SIGN_OUTS[reason].notice },
          signedOutBy: reason,
          signedOutUserId: String(row.user_id),
        };
        // Signed out meanwhile (a disable of the user wrote why): answered with what the row says now.
        this.pool
          .query({ ...SIGN_OUT_STALE_PASSWORD, values: [sid, signedOut, signedInUserOf(data)] })
          .then(({ rowCount }) => (rowCount === 1 ? callback(null, signedOut) : this.get(sid, callback)), callback);
        return;
      }
      // Signed in racing a disable (its check read the account before the disable committed): it
      // is the signed-out session that disable would have left, saying why while the account is
      // disabled, and no session at all once it is enabled again.
      if (row.user_id !== null && isSignedInBeforeDisable(data, row.session_epoch)) {
        if (row.is_disabled !== true) return callback(null, null);
        return callback(null, {
          cookie: data.cookie,
          flash: { type: 'error', message: ACCOUNT_DISABLED_MESSAGE },
          isAccountDisabled: true,
          disabledUsername: row.username ?? undefined,
        });
      }
      // A session a disable signed out (users.repository.ts signOutSessionsOf) says so only while the
      // account is disabled; once it is enabled again, it is no session at all, as above. It told its
      // user "Your account has been disabled" on every page, and at a mistyped password, until they
      // next signed in. Only these rare sessions pay the extra read.
      if (row.user_id === null && data.isAccountDisabled === true && data.disabledUsername !== undefined) {
        this.pool
          .query<{ is_disabled: boolean }>({ ...IS_USER_DISABLED, values: [data.disabledUsername] })
          .then((marked) => callback(null, marked.rows[0]?.is_disabled === true ? data : null), callback);
        return;
      }
      if (row.user_id !== null && row.username !== null && row.role !== null) {
        data.loadedUser = {
          id: row.user_id,
          username: row.username,
          role: row.role,
          isDisabled: row.is_disabled === true,
        };
      }
      callback(null, data);
    }, callback);
  }

  /**
   * Writes a new session's row, or a stored session's over its row only: one whose row was
   * deleted meanwhile (signed out elsewhere) stays deleted, and the request goes on without error.
   */
  override set(sid: string, data: session.SessionData, callback?: (error?: unknown) => void): void {
    const storedAs = this.storedSessions.get(data);
    const { loadedUser: _notStored, ...stored } = data;
    const values: unknown[] = [stored, expiresAtSec(data, this.ttlSec), sid];
    const query =
      storedAs === undefined ? { ...SET_SESSION, values } : { ...UPDATE_SESSION, values: [...values, storedAs] };
    this.pool.query(query).then((result) => {
      // What the row holds now: this session's state if it was written, else what it held.
      if (storedAs === undefined || result.rowCount === 1) this.storedSessions.set(data, sessionStateOf(data));
      callback?.();
    }, callback);
  }

  override destroy(sid: string, callback?: (error?: unknown) => void): void {
    this.pool.query({ ...DESTROY_SESSION, values: [sid] }).then(() => callback?.(), callback);
  }

  override touch(_sid: string, _data: session.SessionData, callback?: () => void): void {
    callback?.();
  }
}

/*
 * One batch of a prune: up to `limit` sessions, the longest expired first, read through the
 * index on `expire` (IDX_session_expire; without it every batch would read and sort the whole
 * table). A row a request is writing at this moment is skipped rather than waited for (SKIP
 * LOCKED): the next prune finds it if it is still expired then.
 */
const DELETE_EXPIRED_SESSIONS = `DELETE FROM "session"
 WHERE sid IN (SELECT sid FROM "session"
                WHERE expire < to_timestamp($1)
                ORDER BY expire
                LIMIT $2
                  FOR UPDATE SKIP LOCKED)
   AND expire < to_timestamp($1)`;

/**
 * Whether the request's session has a row: one its cookie named and the store found. A request with
 * no cookie, or one whose row is gone, gets a session made for it, which is stored only if something
 * is put in it. Another store (none in the app) is taken to hold it.
 */
export function hasStoredSession(req: Request): boolean {
  const store: unknown = req.sessionStore;
  return !(store instanceof PostgresSessionStore) || (req.session !== undefined && store.isStored(req.session));
}

/** Deletes up to `limit` sessions that expired before `before`; returns how many it deleted. */
export async function deleteExpiredSessions(pool: pg.Pool, before: Date, limit: number): Promise<number> {
  const result = await pool.query(DELETE_EXPIRED_SESSIONS, [before.getTime() / 1000, limit]);
  return result.rowCount ?? 0;
}

/** The passport's user of a session, as the row's `sess #>> '{passport,user}'` reads it. */
function signedInUserOf(data: session.SessionData): string | null {
  const user = data.passport?.user;
  return user === undefined || user === null ? null : String(user);
}

/**
 * Whether and how a session is signed in or signed out, in the form UPDATE_SESSION reads its row's:
 * the passport's user, the reason a sign-out elsewhere left (`signedOutBy`) and a disable's mark
 * (`isAccountDisabled`, `disabledUsername`). A row whose state is not the one its request read was
 * signed out (or out again, by a disable) meanwhile, and is not written over.
 */
function sessionStateOf(data: session.SessionData): string {
  return JSON.stringify([
    signedInUserOf(data),
    data.signedOutBy ?? null,
    data.isAccountDisabled ?? null,
    data.disabledUsername ?? null,
  ]);
}

function isSignedInWithOtherPassword(data: session.SessionData, passwordChangedAt: Date | null): boolean {
  if (data.passwordChangedAt === undefined) return false;
  return data.passwordChangedAt !== (passwordChangedAt?.getTime() ?? null);
}

function isSignedInBeforeDisable(data: session.SessionData, sessionEpoch: number | null): boolean {
  if (data.sessionEpoch === undefined) return false;
  return data.sessionEpoch !== (sessionEpoch ?? 0);
}

/*
 * The session cookie is a browser-session cookie (no expiry), so a row lives `ttlSec` after its
 * last write. A session stored while the cookie still carried an expiry keeps it in its row's
 * cookie settings, and its row keeps expiring by it.
 */
function expiresAtSec(data: session.SessionData, ttlSec: number): number {
  const expires = data.cookie?.expires;
  if (expires) return Math.ceil(new Date(expires).getTime() / 1000);
  return Math.ceil(Date.now() / 1000 + ttlSec);
}
