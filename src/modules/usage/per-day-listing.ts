import { addLocalDays, daysBetween } from '../../shared/local-date.js';

/** A window's first and last local dates, both included. */
interface DayWindow {
  start: string;
  end: string;
}

export interface PerDayListing {
  /** The newest day the Per day table lists (it lists every day from the window's start to it); none when it lists none. */
  lastListed: string | undefined;
  /** How many days it lists, which its pages are counted from. */
  count: number;
  /**
   * The days at the window's end left out (charted, not listed): after today and after its last day
   * with a job, from the day after the last listed (the window's start when none is) to its end;
   * none when every day is listed.
   */
  notListed: DayWindow | undefined;
}

/**
 * Which of a window's days the Per day table lists: every day up to today, and after today up to
 * the last day with a job. A window to the end of the month otherwise put a column of zero days
 * still to come above the days a researcher came to check, and a window months ahead a whole
 * first page of them. The page (from its day series) and its HEAD (from one max(end_at)) both ask
 * this, so a HEAD cannot answer 404 for a page its GET shows, or the reverse. `lastJobDay` is the
 * last local day of the window a job ended on; a day outside the window is ignored.
 */
export function listPerDayDays(window: DayWindow, today: string, lastJobDay?: string): PerDayListing {
  const lastBeforeJobs = window.start > today ? undefined : window.end < today ? window.end : today;
  const isJobDayInWindow = lastJobDay !== undefined && lastJobDay >= window.start && lastJobDay <= window.end;
  const lastListed =
    isJobDayInWindow && (lastBeforeJobs === undefined || lastJobDay > lastBeforeJobs) ? lastJobDay : lastBeforeJobs;
  const count = lastListed === undefined ? 0 : daysBetween(window.start, lastListed) + 1;
  // Not "the days after today": a job after today (a cluster clock ahead of the app's) lists the
  // days up to it, and a window that starts after today has none of the days from tomorrow to it.
  const notListed =
    lastListed === window.end
      ? undefined
      : { start: lastListed === undefined ? window.start : addLocalDays(lastListed, 1), end: window.end };
  return { lastListed, count, notListed };
}

/** Whether the window runs past today: only then can its last day with a job change what Per day lists. */
export function hasDaysAfterToday(window: DayWindow, today: string): boolean {
  return window.end > today;
}
