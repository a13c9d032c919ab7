import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { TopLevelSpec } from 'vega-lite';

const FONT = 'DejaVu Sans';
const require = createRequire(import.meta.url);
const FONT_DIR = join(dirname(require.resolve('dejavu-fonts-ttf/package.json')), 'ttf');

/** Shared look: a font shipped with the package so the PNG is the same on every machine. */
export const CHART_CONFIG = {
  font: FONT,
  title: { fontSize: 15, anchor: 'start', subtitleFontSize: 12, subtitleColor: '#555' },
  axis: { labelFontSize: 12, titleFontSize: 13, grid: true, gridColor: '#e6e6e6' },
  legend: { labelFontSize: 12, titleFontSize: 12, orient: 'bottom' },
  view: { stroke: null },
  background: 'white',
  padding: { left: 8, right: 16, top: 8, bottom: 16 },
} as const;

/** The chart libraries, loaded on first use: importing them takes ~0.4 s, which every other command (and each live node) would pay at start. */
let libraries: Promise<{ vega: typeof import('vega'); compile: typeof import('vega-lite').compile; Resvg: typeof import('@resvg/resvg-js').Resvg }> | null = null;
function chartLibraries() {
  return (libraries ??= Promise.all([import('vega'), import('vega-lite'), import('@resvg/resvg-js')]).then(([vega, vegaLite, resvg]) => ({ vega, compile: vegaLite.compile, Resvg: resvg.Resvg })));
}

/** Renders a Vega-Lite spec to SVG (headless, no browser) and that SVG to PNG at 2x. */
export async function renderChart(spec: TopLevelSpec): Promise<{ svg: string; png: Uint8Array }> {
  const { vega, compile, Resvg } = await chartLibraries();
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  const png = new Resvg(svg, {
    font: { fontFiles: [join(FONT_DIR, 'DejaVuSans.ttf'), join(FONT_DIR, 'DejaVuSans-Bold.ttf')], loadSystemFonts: false, defaultFontFamily: FONT },
    fitTo: { mode: 'zoom', value: 2 },
  })
    .render()
    .asPng();
  return { svg, png: new Uint8Array(png) };
}
