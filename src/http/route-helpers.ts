import type { Request, Response } from 'express';
import type { SessionData } from 'express-session';
import { AppError, UnauthorizedError } from '../shared/errors.js';
import { prefersJson, wantsHtml } from './error-handler.js';

/** The signed-in user; the guard ran before, so a missing one is a 401, not a crash. */
export function sessionUserOf(req: Request): Express.User {
  if (!req.user) throw new UnauthorizedError();
  return req.user;
}

/**
 * A browser's form refused with one of `statuses`: routes show it again with the reason and
 * what was typed; anything else (and every JSON client) goes to the error handler.
 */
export function isRefusedForm(req: Request, error: unknown, statuses: readonly number[]): error is AppError {
  return error instanceof AppError && statuses.includes(error.status) && wantsHtml(req);
}

/** A way back from the page an error would show, beside "Back to the start page". */
export interface BackLink {
  href: string;
  text: string;
}

/**
 * Names where the error page goes back to should this request fail: a download or an action
 * with no page of its own left a browser on an error page whose only link was the start page.
 * The error handler still decides between that page and `{error, code}` JSON.
 */
export function offerWayBack(res: Response, link: BackLink): void {
  res.locals.backLink = link;
}

/** What a form or query field held, as text (undefined when absent or not text). */
export function typedIn(source: unknown, name: string): string | undefined {
  const value = (source as Record<string, unknown> | undefined)?.[name];
  return typeof value === 'string' ? value : undefined;
}

/** How a change that was made is told: `json` to API clients, `flash` and `location` to a browser's form. */
export interface ChangeMade {
  /** What was done, sent beside `ok: true` and the flash's message. */
  json: Record<string, unknown>;
  flash: NonNullable<SessionData['flash']>;
  location: string;
  /**
   * The address of something new the change made (a tier: its `/formula?type=`): a JSON client gets
   * 201 Created with it as Location, as answerCreated answers, where a browser's flash still shows
   * at `location`'s fragment.
   */
  createdUrl?: string;
}

/**
 * Answers a change that was made: `{ ok: true, ...json, message }` to a client that asked for
 * JSON, as its refusals are JSON; a 303 to `location` with the message as a flash to a browser's
 * form. Only browsers get the flash: a JSON client never loads the next page, so the message
 * would wait in the session and show on the user's next page, about something they did not do there.
 */
export function answerChange(req: Request, res: Response, change: ChangeMade): void {
  if (prefersJson(req)) {
    if (change.createdUrl) res.status(201).location(change.createdUrl);
    res.json({ ok: true, ...change.json, message: change.flash.message });
    return;
  }
  req.session.flash = { ...change.flash, at: fragmentOf(change.location) };
  res.redirect(303, change.location);
}

/** The id a location's fragment names (`/admin/rates#tier-gov`: `tier-gov`), or undefined without one. */
function fragmentOf(location: string): string | undefined {
  const fragment = location.split('#')[1];
  return fragment ? decodeURIComponent(fragment) : undefined;
}

/** A request that was acted on but did not do what was asked: a refusal to JSON clients, a flash to a browser's form. */
export interface ChangeRefused {
  /** 409 when it could not start, 502 when what it called failed. */
  status: number;
  /** What happened, in a sentence: the JSON answer's `error`, and the browser's flash. */
  message: string;
  /** What was done all the same, sent beside `error` and `code`. */
  json: Record<string, unknown>;
  flash: NonNullable<SessionData['flash']>;
  location: string;
}

/**
 * Answers a request that was acted on without success: `{ error, code, ...json }` with `status` to a
 * client that asked for JSON, as every refusal is, so that a script checking the status or `ok`
 * never takes it for done; a 303 to `location` with the flash to a browser's form, which shows the
 * page where it can be tried again.
 */
export function answerRefused(req: Request, res: Response, refused: ChangeRefused): void {
  if (prefersJson(req)) {
    res.status(refused.status).json({ error: refused.message, code: refused.status, ...refused.json });
    return;
  }
  req.session.flash = refused.flash;
  res.redirect(303, refused.location);
}

/** How a thing that was created is told: `json` and `message` to API clients, `location` to a browser's form. */
export interface Creation {
  /** What was created, sent beside `ok: true` and `message`. */
  json: Record<string, unknown>;
  /** What was done, in a sentence: the JSON answer's `message`, and the browser's flash. */
  message: string;
  /** Where a browser's form goes next. */
  location: string;
  /** The address of what was created, when it has one of its own: the JSON answer's Location. */
  url?: string;
}

/**
 * Answers a creation as answerChange answers a change, with 201 Created to a client that asked
 * for JSON: `{ ok: true, ...json, message }`, and a Location when the new thing has an address.
 */
export function answerCreated(req: Request, res: Response, created: Creation): void {
  if (prefersJson(req)) {
    if (created.url) res.location(created.url);
    res.status(201).json({ ok: true, ...created.json, message: created.message });
    return;
  }
  // Said even where `location` is what was created (a new receipt's page): that page reads as it does
  // any day, and its title ("Receipt #12") told a screen reader nothing of the button having worked.
  req.session.flash = { type: 'success', message: created.message };
  res.redirect(303, created.location);
}

/**
 * A HEAD (a link checker, `curl -I`) of a page: the status and type its GET would answer with, and none
 * of its work, the reading and the rendering (Express runs the GET handler for a HEAD and drops the body).
 */
export function answerHeadWithoutWork(res: Response, isJson: boolean): void {
  res
    .status(200)
    .type(isJson ? 'json' : 'html')
    .end();
}

/** The refusals a page's GET shows itself: the page with the reason and its form, or the error page with a way back of its own. */
const REFUSALS_THE_PAGE_SHOWS: readonly number[] = [400, 404];

/**
 * Answers a HEAD (a link checker, `curl -I`) of a page without its GET's work once `check` passes, and
 * says whether it did. A refusal a browser or `curl -I` gets as a page is left to the GET's code (false):
 * the error page the HEAD answered with was not its GET's (the page with the reason and the form, or
 * another way back), so its Content-Length was not the GET's, which a HEAD must not send (RFC 9110 8.6),
 * and `curl -I` was told JSON where its GET sends HTML. A JSON client's refusal is the same `{error, code}`
 * either way and is thrown.
 */
export async function answeredHeadWithoutWork(req: Request, res: Response, check: () => unknown): Promise<boolean> {
  if (req.method !== 'HEAD') return false;
  try {
    await check();
  } catch (error) {
    if (error instanceof AppError && REFUSALS_THE_PAGE_SHOWS.includes(error.status) && !prefersJson(req)) return false;
    throw error;
  }
  answerHeadWithoutWork(res, prefersJson(req));
  return true;
}
