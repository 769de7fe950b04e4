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

/** Rounds a maximum up to 1, 2 or 5 x 10^n so the axis reads well. */
export function niceCeiling(value: number): number {
  if (!(value > 0)) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  const step = [1, 2, 5, 10].find((candidate) => candidate * magnitude >= value) ?? 10;
  return step * magnitude;
}

function formatAxis(value: number): string {
  if (value >= 1000) return `${Number((value / 1000).toFixed(1))}k`;
  return String(Number(value.toFixed(2)));
}

/** An accessible bar chart (role="img" with a title), one bar per entry, labels thinned to fit. */
export function renderBarChart(options: { title: string; unit: string; bars: Bar[]; color?: string }): string {
  const width = 640;
  const height = 200;
  const left = 48;
  const bottom = 28;
  const top = 12;
  const plotWidth = width - left - 8;
  const plotHeight = height - top - bottom;
  const max = niceCeiling(Math.max(0, ...options.bars.map((bar) => bar.value)));
  const slot = options.bars.length > 0 ? plotWidth / options.bars.length : plotWidth;
  const barWidth = Math.max(1, slot * 0.7);
  const labelEvery = Math.max(1, Math.ceil(options.bars.length / 10));
  const color = options.color ?? '#1f5fbf';
  const parts: string[] = [
    `<svg class="chart" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeXml(options.title)}" xmlns="http://www.w3.org/2000/svg">`,
    `<title>${escapeXml(options.title)}</title>`,
  ];
  for (const fraction of [0, 0.5, 1]) {
    const y = top + plotHeight * (1 - fraction);
    parts.push(
      `<line x1="${left}" x2="${width - 8}" y1="${y}" y2="${y}" stroke="#dde1e8" stroke-width="1"/>`,
      `<text x="${left - 6}" y="${y + 4}" text-anchor="end" font-size="11" fill="#5b6578">${formatAxis(max * fraction)}</text>`,
    );
  }
  options.bars.forEach((bar, index) => {
    const barHeight = max > 0 ? (Math.max(0, bar.value) / max) * plotHeight : 0;
    const x = left + index * slot + (slot - barWidth) / 2;
    const y = top + plotHeight - barHeight;
    parts.push(
      `<rect x="${x.toFixed(2)}" y="${y.toFixed(2)}" width="${barWidth.toFixed(2)}" height="${barHeight.toFixed(2)}" fill="${color}">` +
        `<title>${escapeXml(bar.label)}: ${escapeXml(String(bar.value))} ${escapeXml(options.unit)}</title></rect>`,
    );
    if (index % labelEvery === 0) {
      parts.push(
        `<text x="${(left + index * slot + slot / 2).toFixed(2)}" y="${height - 10}" text-anchor="middle" font-size="11" fill="#5b6578">${escapeXml(bar.label)}</text>`,
      );
    }
  });
  parts.push('</svg>');
  return parts.join('');
}
