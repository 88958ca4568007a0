/** A line chart of one value per iteration, drawn as plain SVG. */
const W = 320;
const H = 140;
const PAD = 28;

/** Axis labels: two significant digits, and 0 for float noise (a KL of −5.6e-7 at the first iteration). */
const tick = (x: number) => (Math.abs(x) < 1e-3 ? '0' : x.toPrecision(2));

export class LineChart {
  private readonly values: number[] = [];
  private readonly svg: SVGSVGElement;

  constructor(
    container: HTMLElement,
    private readonly title: string,
  ) {
    this.svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
    this.svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
    this.svg.setAttribute('role', 'img');
    this.svg.classList.add('chart');
    container.append(this.svg);
    this.draw();
  }

  get points(): number {
    return this.values.length;
  }

  push(value: number): void {
    this.values.push(value);
    this.draw();
  }

  clear(): void {
    this.values.length = 0;
    this.draw();
  }

  private draw(): void {
    const v = this.values.filter(Number.isFinite);
    // The count lets a test (or anyone embedding the page) see that the chart updated.
    this.svg.dataset.points = String(this.values.length);
    const lo = Math.min(...v, 0);
    let hi = Math.max(...v, 0);
    if (hi - lo < 1e-9) hi = lo + 1;
    const n = Math.max(this.values.length, 2);
    const x = (i: number) => PAD + ((W - 2 * PAD) * i) / (n - 1);
    const y = (val: number) => H - PAD - ((H - 2 * PAD) * (val - lo)) / (hi - lo);
    const shown = this.values.map((val, i) => [i, val] as const).filter(([, val]) => Number.isFinite(val));
    const pts = shown.map(([i, val]) => `${x(i).toFixed(1)},${y(val).toFixed(1)}`).join(' ');
    const last = this.values.at(-1);
    this.svg.innerHTML =
      `<text x="${PAD}" y="16" class="chart-title">${this.title}${last !== undefined ? `: ${last.toFixed(3)}` : ''}</text>` +
      `<line x1="${PAD}" y1="${y(0)}" x2="${W - PAD}" y2="${y(0)}" class="chart-zero"/>` +
      `<text x="2" y="${PAD + 4}" class="chart-tick">${tick(hi)}</text>` +
      `<text x="2" y="${H - PAD + 4}" class="chart-tick">${tick(lo)}</text>` +
      `<text x="${W - PAD}" y="${H - 8}" class="chart-tick" text-anchor="end">iteration ${this.values.length}</text>` +
      `<polyline points="${pts}" class="chart-line"/>` +
      shown.map(([i, val]) => `<circle cx="${x(i)}" cy="${y(val)}" r="2.5" class="chart-dot"/>`).join('');
  }
}
