import { describe, expect, it } from 'vitest';
import { CHART_WIDTH, FONT_SIZE, renderBarChart, valueAxis } from '../../src/modules/usage/usage-chart.js';

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

describe('renderBarChart', () => {
  const chart = renderBarChart({
    title: 'GPU-hours per day',
    unit: 'GPU-h',
    bars: [{ label: '12-02', value: 0.024 }],
  });

  it('labels the middle gridline of a 0 to 0.05 axis 0.025, beside the line at half the height', () => {
    const labels = [...chart.matchAll(/<text [^>]*text-anchor="end"[^>]*>([^<]*)<\/text>/g)].map((match) => match[1]);
    expect(labels).toEqual(['0', '0.025', '0.05']);
    const lines = [...chart.matchAll(/<line [^>]*y1="([\d.]+)"/g)].map((match) => Number(match[1]));
    const [bottom, middle, top] = lines as [number, number, number];
    expect(middle).toBeCloseTo((bottom + top) / 2, 9);
  });

  it('draws its text at least 11 px tall at the narrowest a chart is shown', () => {
    // The .charts grid's narrowest column, 18rem, less the card's padding (0.75rem each side).
    const narrowestPx = 18 * 16 - 2 * 12;
    expect(chart).toContain(`viewBox="0 0 ${CHART_WIDTH} `);
    const sizes = [...chart.matchAll(/font-size="([\d.]+)"/g)].map((match) => Number(match[1]));
    expect(sizes.length).toBeGreaterThan(0);
    for (const size of sizes) {
      expect(size).toBe(FONT_SIZE);
      expect((size * narrowestPx) / CHART_WIDTH).toBeGreaterThanOrEqual(11);
    }
  });

  it('thins the day labels of a long window so they do not overlap', () => {
    const bars = Array.from({ length: 90 }, (_, index) => ({ label: `d${index}`, value: index }));
    const long = renderBarChart({ title: 't', unit: 'h', bars });
    const xs = [...long.matchAll(/<text x="([\d.]+)"[^>]*text-anchor="middle"/g)].map((match) => Number(match[1]));
    expect(xs.length).toBeGreaterThan(1);
    // "MM-DD" at FONT_SIZE is about 5 x 0.6 x FONT_SIZE units wide.
    for (let index = 1; index < xs.length; index++) {
      expect((xs[index] as number) - (xs[index - 1] as number)).toBeGreaterThan(5 * 0.6 * FONT_SIZE);
    }
  });
});

describe("a bar's tooltip", () => {
  it.each([
    [286.079336, '286.08'],
    [0.024, '0.02'],
    [1234.5, '1,234.50'],
    [0, '0.00'],
  ])('reads %d as %s, as the table does', (value, shown) => {
    const svg = renderBarChart({ title: 'CPU core-hours per day', unit: 'core-h', bars: [{ label: '12-01', value }] });
    expect(svg).toContain(`<title>12-01: ${shown} core-h</title>`);
  });
});
