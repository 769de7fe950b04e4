/**
 * A small bar chart as an SVG string, rendered on the server: no chart library, no
 * script (the CSP allows none inline) and only presentation attributes, since the
 * CSP also forbids inline style attributes.
 */

export interface Bar {
  /** The local day the bar sums, YYYY-MM-DD. */
  day: string;
  /** The bar's height. */
  value: number;
  /**
   * The value as the table under the chart writes it, for the tooltip: hours to the six decimals
   * they are priced at ("0.005833"), not the float rounded to two ("0.01").
   */
  shown: string;
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const escapeXml = (text: string) => text.replace(/[&<>"']/g, (character) => ESCAPES[character] ?? character);

/** Rounds a maximum up to 1, 2 or 5 x 10^n so the axis reads well. */
export function niceCeiling(value: number): number {
  if (!(value > 0)) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  const step = [1, 2, 5, 10].find((candidate) => candidate * magnitude >= value) ?? 10;
  return step * magnitude;
}

export interface AxisTick {
  value: number;
  /** The value exactly as it is (0.025, not 0.03): a bar is read against it. */
  label: string;
}

/**
 * The value axis of a chart whose tallest bar is `largest`: it runs from 0 to niceCeiling of it
 * (1, 2 or 5 x 10^k), with a gridline at 0, halfway and the top. Halfway is then 0.5, 1 or
 * 2.5 x 10^k, each labelled with as many decimals as it has: rounding 0.025 to two places drew
 * "0.03" beside the line at 0.025, so a 0.024 bar seemed to reach 0.03.
 */
export function valueAxis(largest: number): { top: number; ticks: AxisTick[] } {
  const top = niceCeiling(largest);
  const ticks = [0, top / 2, top].map((value) => ({ value, label: axisLabel(value) }));
  return { top, ticks };
}

/** Up to 20 decimals a float holding a short decimal (0.025, 2500) needs to be written back exactly. */
function decimalsOf(value: number): number {
  for (let digits = 0; digits < 20; digits++) {
    if (Math.abs(Number(value.toFixed(digits)) - value) <= Math.abs(value) * 1e-9) return digits;
  }
  return 20;
}

function axisLabel(value: number): string {
  if (value >= 1000) {
    const thousands = value / 1000;
    return `${thousands.toFixed(decimalsOf(thousands))}k`;
  }
  return value.toFixed(decimalsOf(value));
}

/**
 * The drawing's size in its own units. A chart is drawn 264-336 px wide in the three-column
 * grid (.charts: minmax(18rem, 1fr), less the card's padding) and at most 26rem
 * (svg.chart's max-width); its text is FONT_SIZE units, so 264 / WIDTH * FONT_SIZE = 11 px
 * at the narrowest. Drawn 640 units wide it was scaled to about half: 6 px text.
 */
export const CHART_WIDTH = 300;
const CHART_HEIGHT = 170;
export const FONT_SIZE = 12.5;
/** About how wide an "MM-DD" day label is at FONT_SIZE, with room either side. */
const DAY_LABEL_SLOT = 48;
/** Where the plot starts, after the value axis's labels, and the room right of it. */
const PLOT_LEFT = 52;
const PLOT_RIGHT = 8;
const PLOT_WIDTH = CHART_WIDTH - PLOT_LEFT - PLOT_RIGHT;
/** From one line of the date axis to the next: the year is drawn under its day. */
const LINE_HEIGHT = FONT_SIZE * 1.2;

/** A day that labels the date axis: its bar's index, its month-day, and the year drawn under it, if any. */
export interface DayTick {
  index: number;
  monthDay: string;
  year: string | null;
}

/** Half of a day label's width at FONT_SIZE ("MM-DD", about 0.6 em a character), and a unit to spare. */
const DAY_LABEL_HALF_WIDTH = (5 * 0.6 * FONT_SIZE) / 2 + 1;

/**
 * Where the label of day `index` of `count` is centred: under its bar, but never so near the
 * drawing's edge that half of it is cut off (the last bar of a long window is 8 units from it).
 */
function dayLabelX(index: number, count: number): number {
  const slot = PLOT_WIDTH / Math.max(1, count);
  const underBar = PLOT_LEFT + index * slot + slot / 2;
  return Math.min(Math.max(underBar, DAY_LABEL_HALF_WIDTH), CHART_WIDTH - DAY_LABEL_HALF_WIDTH);
}

/**
 * The date axis of a chart of one bar per day (`days`, YYYY-MM-DD, in order): every n-th day
 * from the first, as many as fit side by side, and the last day, so that the window's end is
 * read off the axis (over a year every 74th day stopped 69 days short of it). When the last
 * n-th day is too near the last day for both labels, it gives way to the last day.
 * Within one calendar year month-day says it all. Over a window across years "12-03" and
 * "01-05" could be either year's, and the first and last of 366 days can be the same month-day:
 * the first label and the first label of each new year then carry their year, on a line under
 * the day, so that a label is no wider and none overlaps.
 */
export function dayAxis(days: readonly string[]): DayTick[] {
  if (days.length === 0) return [];
  const labelCount = Math.max(1, Math.floor(PLOT_WIDTH / DAY_LABEL_SLOT));
  const every = Math.max(1, Math.ceil(days.length / labelCount));
  const last = days.length - 1;
  const indexes: number[] = [];
  for (let index = 0; index < days.length; index += every) indexes.push(index);
  if (indexes.at(-1) !== last) {
    const before = indexes.at(-1) as number;
    if (before > 0 && dayLabelX(last, days.length) - dayLabelX(before, days.length) < DAY_LABEL_SLOT) indexes.pop();
    indexes.push(last);
  }
  const isSpanningYears = yearOf(days[0] as string) !== yearOf(days[last] as string);
  let labelledYear: string | null = null;
  return indexes.map((index) => {
    const day = days[index] as string;
    const year = yearOf(day);
    const tick = { index, monthDay: day.slice(5), year: isSpanningYears && year !== labelledYear ? year : null };
    labelledYear = year;
    return tick;
  });
}

const yearOf = (day: string) => day.slice(0, 4);

/** An accessible bar chart (role="img" with a title), one bar per day, its date axis from dayAxis. */
export function renderBarChart(options: { title: string; unit: string; bars: Bar[]; color?: string }): string {
  const ticks = dayAxis(options.bars.map((bar) => bar.day));
  // A line more under the plot when years are written under their days: the plot keeps its height.
  const yearLine = ticks.some((tick) => tick.year !== null) ? LINE_HEIGHT : 0;
  const width = CHART_WIDTH;
  const height = CHART_HEIGHT + yearLine;
  const left = PLOT_LEFT;
  const bottom = 24 + yearLine;
  const top = 10;
  const plotWidth = PLOT_WIDTH;
  const plotHeight = height - top - bottom;
  const axis = valueAxis(Math.max(0, ...options.bars.map((bar) => bar.value)));
  const max = axis.top;
  const slot = options.bars.length > 0 ? plotWidth / options.bars.length : plotWidth;
  const barWidth = Math.max(1, slot * 0.7);
  const color = options.color ?? '#1f5fbf';
  const parts: string[] = [
    `<svg class="chart" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeXml(options.title)}" xmlns="http://www.w3.org/2000/svg">`,
    `<title>${escapeXml(options.title)}</title>`,
  ];
  for (const tick of axis.ticks) {
    const y = top + plotHeight * (1 - tick.value / max);
    parts.push(
      `<line x1="${left}" x2="${width - 8}" y1="${y}" y2="${y}" stroke="#dde1e8" stroke-width="1"/>`,
      `<text x="${left - 6}" y="${y + 4}" text-anchor="end" font-size="${FONT_SIZE}" fill="#5b6578">${tick.label}</text>`,
    );
  }
  options.bars.forEach((bar, index) => {
    const barHeight = max > 0 ? (Math.max(0, bar.value) / max) * plotHeight : 0;
    const x = left + index * slot + (slot - barWidth) / 2;
    const y = top + plotHeight - barHeight;
    // The tooltip names the whole date: "12-01" alone could be either year's.
    parts.push(
      `<rect x="${x.toFixed(2)}" y="${y.toFixed(2)}" width="${barWidth.toFixed(2)}" height="${barHeight.toFixed(2)}" fill="${color}">` +
        `<title>${escapeXml(bar.day)}: ${escapeXml(bar.shown)} ${escapeXml(options.unit)}</title></rect>`,
    );
  });
  for (const tick of ticks) {
    const x = dayLabelX(tick.index, options.bars.length).toFixed(2);
    const year = tick.year === null ? '' : `<tspan x="${x}" dy="${LINE_HEIGHT}">${escapeXml(tick.year)}</tspan>`;
    parts.push(
      `<text x="${x}" y="${height - 6 - yearLine}" text-anchor="middle" font-size="${FONT_SIZE}" fill="#5b6578">${escapeXml(tick.monthDay)}${year}</text>`,
    );
  }
  parts.push('</svg>');
  return parts.join('');
}
