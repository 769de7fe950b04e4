import { describe, expect, it } from 'vitest';
import { CHART_WIDTH, dayAxis, FONT_SIZE, renderBarChart, valueAxis } from '../../src/modules/usage/usage-chart.js';
import { addLocalDays } from '../../src/shared/local-date.js';

/** `count` consecutive days from `first` (YYYY-MM-DD), as the Per day view has them. */
const daysFrom = (first: string, count: number) =>
  Array.from({ length: count }, (_, index) => addLocalDays(first, index));

/** The date axis's labels as read: "12-28 2025" where the year is drawn under the day. */
const axisTextsOf = (svg: string) =>
  [...svg.matchAll(/<text [^>]*text-anchor="middle"[^>]*>(.*?)<\/text>/g)].map((match) =>
    (match[1] ?? '').replace(/<tspan[^>]*>/g, ' ').replace(/<[^>]+>/g, ''),
  );

describe('valueAxis', () => {
  it.each([
    // tallest bar, gridline labels from 0 to the top
    [0, ['0', '0.5', '1']],
    [-3, ['0', '0.5', '1']],
    [Number.NaN, ['0', '0.5', '1']],
    [0.024, ['0', '0.025', '0.05']],
    [0.05, ['0', '0.025', '0.05']],
    [0.0031, ['0', '0.0025', '0.005']],
    [0.00000012, ['0', '0.0000001', '0.0000002']],
    [0.3, ['0', '0.25', '0.5']],
    [0.7, ['0', '0.5', '1']],
    [1, ['0', '0.5', '1']],
    [1.2, ['0', '1', '2']],
    [3, ['0', '2.5', '5']],
    [7, ['0', '5', '10']],
    [42, ['0', '25', '50']],
    [150, ['0', '100', '200']],
    [300, ['0', '250', '500']],
    [999, ['0', '500', '1k']],
    [1500, ['0', '1k', '2k']],
    [2500, ['0', '2.5k', '5k']],
    [31_000, ['0', '25k', '50k']],
  ])('a tallest bar of %d gives gridlines %j', (largest, labels) => {
    const axis = valueAxis(largest);
    expect(axis.ticks.map((tick) => tick.label)).toEqual(labels);
    // Each label is its gridline's value, the top covers the tallest bar, and halfway is a
    // nice number: 1, 2, 2.5 or 5 x 10^k.
    for (const tick of axis.ticks) {
      const written = tick.label.endsWith('k') ? Number(tick.label.slice(0, -1)) * 1000 : Number(tick.label);
      expect(written).toBeCloseTo(tick.value, 12);
    }
    expect(axis.ticks.at(-1)?.value).toBe(axis.top);
    expect(axis.top).toBeGreaterThanOrEqual(largest > 0 ? largest : 0);
    const half = axis.ticks[1]?.value ?? 0;
    const mantissa = half / 10 ** Math.floor(Math.log10(half));
    expect([1, 2, 2.5, 5].some((nice) => Math.abs(mantissa - nice) < 1e-9)).toBe(true);
  });
});

describe('dayAxis', () => {
  // Over a window within one calendar year the month-day says it all; across years "12-03" and
  // "09-25" could be either year, and the first and last day of a 366-day window can even be the
  // same month-day: the year is written under the first label and under the first of each year.
  // The last day is always labelled, so the window's end is read off the axis; the n-th day
  // before it gives way when the two labels would not both fit.
  it.each([
    // first day, days, labels drawn (month-day, and the year under it)
    ['2026-11-27', 7, ['11-27', '11-29', '12-01', '12-03']],
    ['2026-12-03', 1, ['12-03']],
    ['2026-01-01', 365, ['01-01', '03-15', '05-27', '08-08', '12-31']],
    ['2025-12-28', 7, ['12-28 2025', '12-30', '01-01 2026', '01-03']],
    ['2024-12-31', 2, ['12-31 2024', '01-01 2025']],
    // New Year falls between two labels: the first label after it names the year.
    ['2025-12-30', 11, ['12-30 2025', '01-02 2026', '01-05', '01-09']],
    ['2025-12-03', 366, ['12-03 2025', '02-15 2026', '04-30', '07-13', '12-03']],
    // Only the last day is in the next year: it names its year too.
    ['2025-01-01', 366, ['01-01 2025', '03-16', '05-29', '08-11', '01-01 2026']],
    ['2026-09-05', 90, ['09-05', '09-23', '10-11', '10-29', '12-03']],
  ])('from %s over %d days labels %j', (first, count, labels) => {
    const ticks = dayAxis(daysFrom(first, count));
    expect(ticks.map((tick) => (tick.year ? `${tick.monthDay} ${tick.year}` : tick.monthDay))).toEqual(labels);
    expect(ticks[0]?.index).toBe(0);
  });

  it('labels the first and the last day of every window from 1 to 731 days', () => {
    for (let count = 1; count <= 731; count++) {
      const ticks = dayAxis(daysFrom('2025-06-15', count));
      expect([ticks[0]?.index, ticks.at(-1)?.index], `${count} days`).toEqual([0, count - 1]);
    }
  });

  it('labels no day of an empty window', () => {
    expect(dayAxis([])).toEqual([]);
  });
});

describe('renderBarChart', () => {
  const gpuChart = () =>
    renderBarChart({
      title: 'GPU-hours per day',
      unit: 'GPU-h',
      bars: [{ day: '2026-12-02', value: 0.024, shown: '0.024000' }],
    });

  it('labels the middle gridline of a 0 to 0.05 axis 0.025, beside the line at half the height', () => {
    const chart = gpuChart();
    const labels = [...chart.matchAll(/<text [^>]*text-anchor="end"[^>]*>([^<]*)<\/text>/g)].map((match) => match[1]);
    expect(labels).toEqual(['0', '0.025', '0.05']);
    const lines = [...chart.matchAll(/<line [^>]*y1="([\d.]+)"/g)].map((match) => Number(match[1]));
    const [bottom, middle, top] = lines as [number, number, number];
    expect(middle).toBeCloseTo((bottom + top) / 2, 9);
  });

  it('draws its text at least 11 px tall at the narrowest a chart is shown', () => {
    // The .charts grid's narrowest column, 18rem, less the card's padding (0.75rem each side).
    const narrowestPx = 18 * 16 - 2 * 12;
    const chart = gpuChart();
    expect(chart).toContain(`viewBox="0 0 ${CHART_WIDTH} `);
    const sizes = [...chart.matchAll(/font-size="([\d.]+)"/g)].map((match) => Number(match[1]));
    expect(sizes.length).toBeGreaterThan(0);
    for (const size of sizes) {
      expect(size).toBe(FONT_SIZE);
      expect((size * narrowestPx) / CHART_WIDTH).toBeGreaterThanOrEqual(11);
    }
  });

  it.each([
    ['2026-09-05', 90],
    ['2025-12-03', 366],
  ])('thins the day labels of a long window (from %s, %d days) so they do not overlap', (first, count) => {
    const bars = daysFrom(first, count).map((day, index) => ({ day, value: index, shown: `${index}.000000` }));
    const long = renderBarChart({ title: 't', unit: 'h', bars });
    const xs = [...long.matchAll(/<text x="([\d.]+)"[^>]*text-anchor="middle"/g)].map((match) => Number(match[1]));
    expect(xs.length).toBeGreaterThan(1);
    // "MM-DD" at FONT_SIZE is about 5 x 0.6 x FONT_SIZE units wide, the year under it 4 x.
    for (let index = 1; index < xs.length; index++) {
      expect((xs[index] as number) - (xs[index - 1] as number)).toBeGreaterThan(5 * 0.6 * FONT_SIZE);
    }
  });

  it("draws every day label, the last day's included, within the drawing and clear of the next, for 1 to 731 days", () => {
    // "MM-DD" at FONT_SIZE is about 5 x 0.6 x FONT_SIZE units wide, centred on its x.
    const half = (5 * 0.6 * FONT_SIZE) / 2;
    for (let count = 1; count <= 731; count++) {
      const bars = daysFrom('2025-06-15', count).map((day) => ({ day, value: 1, shown: '1.000000' }));
      const svg = renderBarChart({ title: 't', unit: 'h', bars });
      const xs = [...svg.matchAll(/<text x="([\d.]+)"[^>]*text-anchor="middle"/g)].map((match) => Number(match[1]));
      expect(axisTextsOf(svg).at(-1)?.slice(0, 5), `${count} days`).toBe(bars.at(-1)?.day.slice(5));
      xs.forEach((x, index) => {
        expect(x - half, `${count} days, label ${index}`).toBeGreaterThanOrEqual(0);
        expect(x + half, `${count} days, label ${index}`).toBeLessThanOrEqual(CHART_WIDTH);
        if (index > 0) expect(x - (xs[index - 1] as number), `${count} days, label ${index}`).toBeGreaterThan(2 * half);
      });
    }
  });

  it('writes the year under the first day and the first of the new year, within the drawing', () => {
    const svg = renderBarChart({
      title: 't',
      unit: 'h',
      bars: daysFrom('2025-12-28', 7).map((day) => ({ day, value: 1, shown: '1.000000' })),
    });
    expect(axisTextsOf(svg)).toEqual(['12-28 2025', '12-30', '01-01 2026', '01-03']);
    const height = Number(/viewBox="0 0 [\d.]+ ([\d.]+)"/.exec(svg)?.[1]);
    const lowest = Math.max(...[...svg.matchAll(/<text [^>]*y="([\d.]+)"/g)].map((match) => Number(match[1])));
    const years = [...svg.matchAll(/<tspan [^>]*dy="([\d.]+)"[^>]*>\d{4}</g)].map((match) => Number(match[1]));
    expect(years).toHaveLength(2);
    // The year's baseline, a line under the day's, and its descent are within the drawing.
    for (const dy of years) expect(lowest + dy + 0.25 * FONT_SIZE).toBeLessThanOrEqual(height);
  });

  it('keeps the bars as tall whether or not the axis names years', () => {
    const gridlines = (first: string) =>
      [
        ...renderBarChart({
          title: 't',
          unit: 'h',
          bars: daysFrom(first, 7).map((day) => ({ day, value: 1, shown: '1.000000' })),
        }).matchAll(/<line [^>]*y1="([\d.]+)"/g),
      ].map((match) => Number(match[1]));
    expect(gridlines('2025-12-28')).toEqual(gridlines('2026-11-27'));
  });
});

describe("a bar's tooltip", () => {
  // The table under the chart writes the hours to their six decimals; the tooltip rounded the
  // float to two ("0.01" over a cell of 0.005833, "0.00" for 0.004167 GPU-hours).
  it.each([
    [286.079336, '286.079336'],
    [0.005833, '0.005833'],
    [1234.5, '1,234.500000'],
    [0, '0.000000'],
  ])('reads %d as the table writes it, %s', (value, shown) => {
    const svg = renderBarChart({
      title: 'CPU core-hours per day',
      unit: 'core-h',
      bars: [{ day: '2026-12-01', value, shown }],
    });
    // The whole date: over a window across New Year "12-01" alone could be either year's.
    expect(svg).toContain(`<title>2026-12-01: ${shown} core-h</title>`);
  });
});
