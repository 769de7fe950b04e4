/**
 * A small bar chart as an SVG string, rendered on the server: no chart library, no
 * script (the CSP allows none inline) and only presentation attributes, since the
 * CSP also forbids inline style attributes.
 */

export interface Bar {
  label: string;
  value: number;
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const escapeXml = (text: string) => text.replace(/[&<>"']/g, (character) => ESCAPES[character] ?? character);

// A bar's tooltip reads its value as the table under the chart does (2 decimals, grouped), not
// as the float the day's sum left ("286.079336 core-h").
const TOOLTIP_HOURS = new Intl.NumberFormat('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });

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

/** An accessible bar chart (role="img" with a title), one bar per entry, labels thinned to fit. */
export function renderBarChart(options: { title: string; unit: string; bars: Bar[]; color?: string }): string {
  const width = CHART_WIDTH;
  const height = CHART_HEIGHT;
  const left = 52;
  const bottom = 24;
  const top = 10;
  const plotWidth = width - left - 8;
  const plotHeight = height - top - bottom;
  const axis = valueAxis(Math.max(0, ...options.bars.map((bar) => bar.value)));
  const max = axis.top;
  const slot = options.bars.length > 0 ? plotWidth / options.bars.length : plotWidth;
  const barWidth = Math.max(1, slot * 0.7);
  const labelCount = Math.max(1, Math.floor(plotWidth / DAY_LABEL_SLOT));
  const labelEvery = Math.max(1, Math.ceil(options.bars.length / labelCount));
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
    parts.push(
      `<rect x="${x.toFixed(2)}" y="${y.toFixed(2)}" width="${barWidth.toFixed(2)}" height="${barHeight.toFixed(2)}" fill="${color}">` +
        `<title>${escapeXml(bar.label)}: ${escapeXml(TOOLTIP_HOURS.format(bar.value))} ${escapeXml(options.unit)}</title></rect>`,
    );
    if (index % labelEvery === 0) {
      parts.push(
        `<text x="${(left + index * slot + slot / 2).toFixed(2)}" y="${height - 6}" text-anchor="middle" font-size="${FONT_SIZE}" fill="#5b6578">${escapeXml(bar.label)}</text>`,
      );
    }
  });
  parts.push('</svg>');
  return parts.join('');
}
