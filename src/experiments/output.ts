import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import { renderChart } from './charts.js';

/** Writes `name.json`, and for each chart `name.svg` and `name.png`, into `dir`; returns the paths. */
export async function writeArtifacts(dir: string, files: { name: string; json?: unknown; chart?: TopLevelSpec; text?: string }[]): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  const written: string[] = [];
  for (const f of files) {
    if (f.json !== undefined) {
      const p = join(dir, `${f.name}.json`);
      writeFileSync(p, JSON.stringify(f.json, null, 2) + '\n');
      written.push(p);
    }
    if (f.chart) {
      const { svg, png } = await renderChart(f.chart);
      writeFileSync(join(dir, `${f.name}.svg`), svg);
      writeFileSync(join(dir, `${f.name}.png`), png);
      written.push(join(dir, `${f.name}.svg`), join(dir, `${f.name}.png`));
    }
    if (f.text !== undefined) {
      const p = join(dir, f.name);
      writeFileSync(p, f.text);
      written.push(p);
    }
  }
  return written;
}
