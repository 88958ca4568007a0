import { describe, expect, it } from 'vitest';
import { barChart, lineChart, niceTicks, tickLabel } from './svg-chart.js';

describe('niceTicks', () => {
  it('covers the range with 1-2-5 steps (hand-computed)', () => {
    expect(niceTicks(0, 1)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    // raw step 3 / 5 = 0.6 -> 1.
    expect(niceTicks(-0.3, 2.7)).toEqual([-1, 0, 1, 2, 3]);
    // raw step 37 / 5 = 7.4 -> 10.
    expect(niceTicks(3, 40)).toEqual([0, 10, 20, 30, 40]);
    expect(niceTicks(2, 0)).toEqual(niceTicks(0, 2));
  });
  it('widens a degenerate range and rejects a non-finite one', () => {
    const t = niceTicks(5, 5);
    expect(t[0]!).toBeLessThanOrEqual(4.5);
    expect(t[t.length - 1]!).toBeGreaterThanOrEqual(5.5);
    expect(niceTicks(0, 0)).toContain(0);
    expect(() => niceTicks(0, Infinity)).toThrow(/not finite/);
  });
  it('labels ticks with the decimals the step needs', () => {
    expect(tickLabel(0.2, 0.2)).toBe('0.2');
    expect(tickLabel(20, 10)).toBe('20');
    expect(tickLabel(0.05, 0.05)).toBe('0.05');
    expect(tickLabel(1e-17, 0.2)).toBe('0.0');
  });
});

describe('lineChart', () => {
  const spec = {
    id: 'c1',
    title: 'A <title> & "quotes"',
    xLabel: 'x',
    yLabel: 'y',
    series: [
      {
        name: 'a<b>',
        color: 'red',
        points: [
          { x: 0, y: 0, label: 'p<1>' },
          { x: 1, y: 1 },
          { x: NaN, y: 2 },
        ],
        line: [
          { x: 0, y: 0 },
          { x: 1, y: 1 },
        ],
      },
      { name: 'b', color: 'blue', points: [{ x: 0.5, y: 0.5 }], shape: 'diamond' as const },
    ],
  };
  const svg = lineChart(spec);
  it('draws one marker per finite point, lines, legend, escaped text', () => {
    expect(svg.startsWith('<svg id="c1" class="chart"')).toBe(true);
    expect(svg.match(/<circle class="marker"/g)!.length).toBe(2); // series a: 2 finite points (NaN dropped)
    expect(svg.match(/<polygon class="marker"/g)!.length).toBe(1); // series b
    expect(svg.match(/class="legend-marker"/g)!.length).toBe(2);
    expect(svg.match(/class="series-line"/g)!.length).toBe(1);
    expect(svg).toContain('A &lt;title&gt; &amp; &quot;quotes&quot;');
    expect(svg).toContain('a&lt;b&gt;');
    expect(svg).toContain('<title>p&lt;1&gt;</title>');
    expect(svg).not.toMatch(/<b>|p<1>/);
  });
  it('maps data to the plot area: (0, 0) at the bottom-left corner, (1, 1) at the top-right', () => {
    // Ticks 0..1 on both axes; plot area: left 62, right 560 − 16, top 34, bottom 380 − 48 − 18 (one legend row).
    expect(svg).toContain('cx="62.0" cy="314.0"');
    expect(svg).toContain('cx="544.0" cy="34.0"');
  });
  it('says "no data" without finite points', () => {
    const empty = lineChart({
      ...spec,
      id: 'e',
      series: [{ name: 'x', color: 'red', points: [{ x: NaN, y: 1 }] }],
    });
    expect(empty).toContain('no data');
    expect(empty).not.toContain('class="marker"');
  });
});

describe('barChart', () => {
  it('draws bars proportional to their values, clamped to the axis', () => {
    const svg = barChart({
      id: 'b',
      title: 't',
      bars: [
        { label: 'half', value: 0.5 },
        { label: 'over', value: 2 },
        { label: 'nan', value: NaN },
      ],
      width: 560,
    });
    // Plot width 560 − 190 − 70 = 300.
    const widths = [...svg.matchAll(/class="bar" x="190" y="[\d.]+" width="([\d.]+)"/g)].map((m) =>
      Number(m[1]),
    );
    expect(widths).toEqual([150, 300, 0]);
    expect(barChart({ id: 'z', title: 't', bars: [] })).toContain('no data');
  });
});
