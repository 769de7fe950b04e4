const COUNT_FORMAT = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

/** 12,001: a count grouped by thousands, as the pages print money and hours. */
export function formatCount(count: number): string {
  return COUNT_FORMAT.format(count);
}

/** "1 job", "1,000 jobs". */
export function counted(count: number, noun: string): string {
  return `${formatCount(count)} ${noun}${count === 1 ? '' : 's'}`;
}
