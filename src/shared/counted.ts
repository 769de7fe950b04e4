import { revealControls } from './visible-text.js';

const COUNT_FORMAT = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

/** 12,001: a count grouped by thousands, as the pages print money and hours. */
export function formatCount(count: number): string {
  return COUNT_FORMAT.format(count);
}

/** "1 job", "1,000 jobs". */
export function counted(count: number, noun: string): string {
  return `${formatCount(count)} ${noun}${count === 1 ? '' : 's'}`;
}

/** Names listed in one sentence of a message (the month-end summary, the billing page); the rest are counted. */
export const NAMES_LISTED = 10;

/**
 * "a, b, c" or "a, b, … and 184 more": a list of names that stays short at any scale. A name's
 * bidirectional and terminal controls are written as their escapes (revealControls): a username from a
 * hand-made sacct file, or an actor typed at a failed sign-in, holding a right-to-left override
 * turned the rest of the sentence around, the other names and counts included.
 */
export function listedNames(names: string[]): string {
  const shown = names.slice(0, NAMES_LISTED).map(revealControls).join(', ');
  const rest = names.length - NAMES_LISTED;
  return rest > 0 ? `${shown} and ${formatCount(rest)} more` : shown;
}
