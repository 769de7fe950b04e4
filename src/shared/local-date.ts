import { z } from 'zod';

/**
 * The dates a form or query may name. Windows end at the start of the day after their last
 * day, and some pages extend a window from its start; an instant in the year 10000 cannot be
 * written as a PostgreSQL timestamp the way the driver sends it, so "forever" (9999-12-31)
 * would fail deep in a query. A bound far beyond any job keeps that from happening.
 */
export const EARLIEST_LOCAL_DATE = '1900-01-01';
export const LATEST_LOCAL_DATE = '2999-12-31';

/** YYYY-MM-DD naming a day that exists: Date rolls 2026-02-30 over to March and gives up on month 13. */
export function isCalendarDate(text: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(text)) return false;
  const date = new Date(`${text}T00:00:00Z`);
  return !Number.isNaN(date.getTime()) && date.toISOString().slice(0, 10) === text;
}

/** The most characters of a refused date a reason quotes back: enough to recognise it by. */
const QUOTED_TYPING_LIMIT = 32;

/**
 * `text` as a reason quotes it: in double quotes, escaped as JSON writes a string (a quote, a
 * backslash, a line break or another control character cannot end the quote or the line), any
 * other invisible format character (a bidirectional control, a zero-width space) written as its
 * \u escape, and cut to QUOTED_TYPING_LIMIT characters with an ellipsis: whatever was sent, the
 * reason stays one short line. Pages escape it for HTML as they escape every message.
 */
function quotedTyping(text: string): string {
  const characters = [...text];
  const shown =
    characters.length > QUOTED_TYPING_LIMIT ? `${characters.slice(0, QUOTED_TYPING_LIMIT).join('')}…` : text;
  return JSON.stringify(shown).replace(/\p{Cf}/gu, (character) =>
    // Each UTF-16 unit, as JSON writes a character past U+FFFF (a tag character is one).
    character
      .split('')
      .map((unit) => `\\u${unit.charCodeAt(0).toString(16).padStart(4, '0')}`)
      .join(''),
  );
}

/** What is wrong with `text` as a local date, or undefined when it is one; one reason at a time. */
function localDateProblem(text: string): string | undefined {
  // An empty form field is a date not given, not a date in the wrong format.
  if (text === '') return 'is required';
  // A year of five or six digits is a browser date field's (Chromium's holds years up to 275760): a
  // fifth digit typed into the year of a date picked in it was told the date was in the wrong format.
  if (/^\d{5,6}-\d{2}-\d{2}$/.test(text)) return `must be between ${EARLIEST_LOCAL_DATE} and ${LATEST_LOCAL_DATE}`;
  // Quoted back, as an impossible day is named below: on a CSV's error page or to a script the reason
  // named no date, and the reader had to find which of those sent was wrong.
  if (!/^\d{4}-\d{2}-\d{2}$/.test(text)) return notADateReason(quotedTyping(text));
  // Named, as it is safely ten characters here: a browser's date field cannot hold 2026-02-30 and
  // shows an empty field, so a page that re-rendered it said a date was wrong but showed none.
  if (!isCalendarDate(text)) return `is not a real calendar date (${text})`;
  if (text < EARLIEST_LOCAL_DATE || text > LATEST_LOCAL_DATE) {
    return `must be between ${EARLIEST_LOCAL_DATE} and ${LATEST_LOCAL_DATE}`;
  }
  return undefined;
}

/** What a date field says of anything but a date as YYYY-MM-DD, with what was sent after "got". */
function notADateReason(sent: string): string {
  return `must be a date as YYYY-MM-DD (got ${sent})`;
}

/**
 * A value sent where a date goes that is not text, as a reason writes it: as JSON writes it (a JSON
 * number a route read as written, JsonNumberText, writes its digits through toJSON), cut as
 * quotedTyping cuts text; a number too large for a double says so.
 */
function sentNonText(value: unknown): string {
  // JSON.parse reads a number past a double's range (1e400) as Infinity, which JSON writes as null: the
  // client was told it "got null", the refusal of another value.
  if (typeof value === 'number' && !Number.isFinite(value)) return 'a number too large to read';
  // A method, never a field of a JSON object named so (`{"toJSON": 1}`), which JSON.stringify writes.
  const toJson = typeof value === 'object' && value !== null ? (value as { toJSON?: unknown }).toJSON : undefined;
  const written = typeof toJson === 'function' ? String(toJson.call(value)) : JSON.stringify(value);
  const characters = [...String(written)];
  return characters.length > QUOTED_TYPING_LIMIT
    ? `${characters.slice(0, QUOTED_TYPING_LIMIT).join('')}…`
    : String(written);
}

/**
 * A date field's value before it is read as text. A JSON number, `true` or an object where a date goes
 * (`{"start": 20260101}`) is told the date's format, as a string in another format is: it was told
 * "must be text", which named no format. Left out, null and a list go on to the text schema, whose
 * refusals (is required, cannot be null, must be given once) parseInput words.
 */
const ZDateText = z
  .unknown()
  .superRefine((value, context) => {
    if (value === undefined || value === null || typeof value === 'string' || Array.isArray(value)) return;
    context.addIssue({ code: 'custom', message: notADateReason(sentNonText(value)) });
  })
  .transform((value) => value as string);

/** A date's text: a calendar date `YYYY-MM-DD` that exists (no 2026-02-30), between the two above. */
const ZLocalDateText = z
  .string()
  .trim()
  .superRefine((text, context) => {
    const problem = localDateProblem(text);
    if (problem) context.addIssue({ code: 'custom', message: problem });
  });

/** A calendar date `YYYY-MM-DD` that exists (no 2026-02-30), between the two above. */
export const ZLocalDate = ZDateText.pipe(ZLocalDateText);

/**
 * A ZLocalDate a form or query may leave out: missing, empty or only spaces is undefined (a date
 * field left empty is sent as ""), anything else must be a date.
 */
export const ZOptionalLocalDate = ZDateText.optional().pipe(
  z
    .string()
    .trim()
    .optional()
    .transform((text) => text || undefined)
    .pipe(ZLocalDateText.optional()),
);

const formatters = new Map<string, Intl.DateTimeFormat>();
function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(timeZone);
  if (!formatter) {
    formatter = new Intl.DateTimeFormat('en-CA', {
      timeZone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      hourCycle: 'h23',
    });
    formatters.set(timeZone, formatter);
  }
  return formatter;
}

/** How far the zone's wall clock is ahead of UTC at that instant, in ms, asked of Intl. */
function offsetFromIntl(utcMs: number, timeZone: string): number {
  const p: Record<string, number> = {};
  for (const part of formatterFor(timeZone).formatToParts(new Date(utcMs))) {
    if (part.type !== 'literal') p[part.type] = Number(part.value);
  }
  const asUtc = Date.UTC(p.year ?? 1970, (p.month ?? 1) - 1, p.day ?? 1, p.hour ?? 0, p.minute ?? 0, p.second ?? 0);
  return asUtc - Math.floor(utcMs / 1000) * 1000;
}

const DAY_MS = 86_400_000;
const MAX_CACHED_DAYS = 4096;
// Per zone: UTC day number -> the offset all that day, or null on a day the offset changes.
const offsetsByDay = new Map<string, Map<number, number | null>>();

/**
 * How far the zone's wall clock is ahead of UTC at that instant, in ms. Asking Intl costs a
 * few microseconds and a page of 50 jobs asks 100 times, so the offset is kept per UTC day:
 * a day whose first and last second have the same offset has it all day (no zone changes its
 * offset twice in one day); on the few days it changes, every instant is asked of Intl.
 */
export function zoneOffsetMs(utcMs: number, timeZone: string): number {
  let days = offsetsByDay.get(timeZone);
  if (!days) {
    days = new Map();
    offsetsByDay.set(timeZone, days);
  }
  const day = Math.floor(utcMs / DAY_MS);
  let offset = days.get(day);
  if (offset === undefined) {
    const first = offsetFromIntl(day * DAY_MS, timeZone);
    const last = offsetFromIntl((day + 1) * DAY_MS - 1000, timeZone);
    offset = first === last ? first : null;
    if (days.size >= MAX_CACHED_DAYS) days.clear();
    days.set(day, offset);
  }
  return offset ?? offsetFromIntl(utcMs, timeZone);
}

/** A clock or calendar field (0-99) in two digits. */
export const padTwoDigits = (value: number) => String(value).padStart(2, '0');

/** The zone's wall-clock fields of an instant (month 1-12). */
export function localParts(instant: Date, timeZone: string) {
  const wall = new Date(instant.getTime() + zoneOffsetMs(instant.getTime(), timeZone));
  return {
    year: wall.getUTCFullYear(),
    month: wall.getUTCMonth() + 1,
    day: wall.getUTCDate(),
    hour: wall.getUTCHours(),
    minute: wall.getUTCMinutes(),
    second: wall.getUTCSeconds(),
  };
}

/** The instant a local calendar day starts in `timeZone` (DST-aware). */
export function startOfLocalDay(localDate: string, timeZone: string): Date {
  const [year, month, day] = localDate.split('-').map(Number);
  const wallClock = Date.UTC(year ?? 1970, (month ?? 1) - 1, day ?? 1);
  const first = wallClock - zoneOffsetMs(wallClock, timeZone);
  const second = wallClock - zoneOffsetMs(first, timeZone);
  if (toLocalDate(new Date(second), timeZone) >= localDate) return new Date(second);
  // Where summer time starts at midnight (America/Santiago, America/Havana) the clock jumps
  // from 23:59:59 to 01:00 and the day has no 00:00; `second` is then an hour early, on the
  // day before. The day starts at the jump: the first second between the two guesses whose
  // local date is this one.
  let before = second;
  let from = Math.max(first, second + 1000);
  while (from - before > 1000) {
    const middle = before + Math.floor((from - before) / 2000) * 1000;
    if (toLocalDate(new Date(middle), timeZone) >= localDate) from = middle;
    else before = middle;
  }
  return new Date(from);
}

/** The instant the next local day starts: the exclusive end of `localDate`. */
export function endOfLocalDay(localDate: string, timeZone: string): Date {
  const next = new Date(`${localDate}T00:00:00Z`);
  next.setUTCDate(next.getUTCDate() + 1);
  return startOfLocalDay(next.toISOString().slice(0, 10), timeZone);
}

/** The local calendar date of an instant, `YYYY-MM-DD`. */
export function toLocalDate(instant: Date, timeZone: string): string {
  const p = localParts(instant, timeZone);
  return `${p.year}-${padTwoDigits(p.month)}-${padTwoDigits(p.day)}`;
}

/** `YYYY-MM-DDTHH:MM:SS` wall-clock time in the zone, without an offset (as sacct prints and reads it). */
export function toLocalIsoSeconds(instant: Date, timeZone: string): string {
  const p = localParts(instant, timeZone);
  return `${p.year}-${padTwoDigits(p.month)}-${padTwoDigits(p.day)}T${padTwoDigits(p.hour)}:${padTwoDigits(p.minute)}:${padTwoDigits(p.second)}`;
}

/** `YYYY-MM-DD HH:MM` in the zone, for pages; a time the clocks show twice gets its offset (repeatedTimeMark). */
export function formatLocalDateTime(instant: Date, timeZone: string): string {
  const p = localParts(instant, timeZone);
  return `${p.year}-${padTwoDigits(p.month)}-${padTwoDigits(p.day)} ${padTwoDigits(p.hour)}:${padTwoDigits(p.minute)}${repeatedTimeMark(instant, timeZone)}`;
}

/**
 * `YYYY-MM-DD HH:MM:SS (Zone)` in the zone, to the second and named, for messages about ingestion
 * (run notes and errors, `npm run ingest`'s summary), where a minute can hold both times compared
 * (End before Start); a time the clocks show twice gets its offset too (repeatedTimeMark).
 */
export function formatZonedTimeSeconds(instant: Date, timeZone: string): string {
  return `${toLocalIsoSeconds(instant, timeZone).replace('T', ' ')}${repeatedTimeMark(instant, timeZone)} (${timeZone})`;
}

/** "UTC+07:00", "UTC-03:30": an offset from UTC in ms, as ISO 8601 writes it. */
function formatUtcOffset(offsetMs: number): string {
  const minutes = Math.round(Math.abs(offsetMs) / 60_000);
  return `UTC${offsetMs < 0 ? '-' : '+'}${padTwoDigits(Math.floor(minutes / 60))}:${padTwoDigits(minutes % 60)}`;
}

const HOURS_6_MS = 6 * 3_600_000;

/**
 * " (UTC-04:00)" after a local time the zone's clocks show twice, naming which of the two it is:
 * when summer time ends the hour before the change is repeated (01:30 on 2026-11-01 in New York
 * is both 05:30 UTC, "(UTC-04:00)", and 06:30 UTC, "(UTC-05:00)"). "" for every other time, which
 * has one reading. A zone changes its offset at most once in a few hours, so the other reading,
 * if any, has the offset in force 6 hours before or after.
 */
export function repeatedTimeMark(instant: Date, timeZone: string): string {
  return repeatedTimeTwin(instant, timeZone) === null
    ? ''
    : ` (${formatUtcOffset(zoneOffsetMs(instant.getTime(), timeZone))})`;
}

/**
 * The other instant whose wall-clock time in the zone is the same as this one's, for a time the
 * clocks show twice (an hour before or after it when summer time ends), else null.
 */
export function repeatedTimeTwin(instant: Date, timeZone: string): Date | null {
  const at = instant.getTime();
  const offset = zoneOffsetMs(at, timeZone);
  for (const probe of [at - HOURS_6_MS, at + HOURS_6_MS]) {
    const other = zoneOffsetMs(probe, timeZone);
    if (other === offset) continue;
    // The instant that shows the same wall-clock time at the other offset, if that offset holds there.
    const twin = at + offset - other;
    if (twin !== at && zoneOffsetMs(twin, timeZone) === other) return new Date(twin);
  }
  return null;
}

/** True for a real calendar date written `YYYY-MM-DD` (2025-02-30 is not one). */
export function isLocalDate(text: string): boolean {
  return ZLocalDate.safeParse(text).success;
}

/** The local date `days` after (or before, when negative) the given one. */
export function addLocalDays(localDate: string, days: number): string {
  const shifted = new Date(`${localDate}T00:00:00Z`);
  shifted.setUTCDate(shifted.getUTCDate() + days);
  return shifted.toISOString().slice(0, 10);
}

/** Whole days from `from` to `to` (both local dates); negative when `to` is earlier. */
export function daysBetween(from: string, to: string): number {
  return Math.round((Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / 86_400_000);
}
