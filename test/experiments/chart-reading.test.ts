/**
 * The charts as a reader of a paper sees them (issue 21): Fig. 5's error bars and the paper's
 * diamonds sit on their bars' centres; Fig. 7's value labels never overprint and its hand-computed
 * line is called what it is, a ceiling; a sweep's chart speaks in titles and units, not field names
 * and raw bytes. Specs are built from made-up results: the layout, not the model, is under test.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fig5Chart, type ReproResult } from '../../src/experiments/repro.js';
import { fig7Chart, type Fig7Point } from '../../src/experiments/fig7.js';
import { sweepChart, type SweepResult } from '../../src/experiments/sweep.js';

const fidelity = { mode: 'full', moves: 1, exact: 1, worstRelativeError99: 0 };
type Layer = { mark: { type: string; width?: unknown }; encoding?: Record<string, { field?: string }>; transform?: unknown[] };

test('Fig. 5: bars fill their offset bands, so error bars, caps and diamonds (placed at band centres) sit on the bars', () => {
  const bar = (mode: string, hostLanes: number, mbPerSec: number) => ({ mode, hostLanes, mbPerSec, stdevMbPerSec: 2, paperMbPerSec: mbPerSec + 1 });
  const r = { preset: 'paper-2012', sizeBytes: 1 << 20, runs: 2, fig5: { bars: [bar('direct', 8, 249), bar('conventional', 8, 249), bar('direct', 1, 249), bar('conventional', 1, 133)], fidelity } } as unknown as ReproResult;
  const spec = fig5Chart(r) as unknown as { encoding: { xOffset: { scale?: { paddingInner?: number } } }; layer: Layer[] };
  const marks = spec.layer.map((l) => l.mark.type);
  assert.ok(!marks.includes('errorbar'), 'no errorbar mark: its ticks are not centred on an offset band');
  const barLayer = spec.layer.find((l) => l.mark.type === 'bar')!;
  assert.equal(barLayer.mark.width, undefined, 'a bar as wide as its band: the gap comes from the scale');
  assert.ok((spec.encoding.xOffset.scale?.paddingInner ?? 0) > 0);
  assert.deepEqual(spec.layer.filter((l) => l.mark.type === 'tick').map((l) => l.encoding!.y.field).sort(), ['hi', 'lo'], 'a cap at each end');
});

const point = (mode: 'direct' | 'conventional', hostLanes: number, pairs: number, mbPerSec: number, ceiling: number) =>
  ({ mode, hostLanes, pairs, mbPerSec, perPairMbPerSec: mbPerSec / pairs, predicted: { mbPerSec: ceiling, resource: 'x' }, fidelity, limit: { explanation: '' } }) as unknown as Fig7Point;

test('Fig. 7: value labels never overprint (697 beside 707, three series at 249), and the dashed line is a ceiling', () => {
  const points = [1, 2, 4, 8].flatMap((n) => [
    point('direct', 1, n, n === 1 ? 249 : n === 2 ? 494 : 697, 710),
    point('direct', 8, n, n === 1 ? 249 : n === 2 ? 495 : 707, 710),
    point('conventional', 1, n, 133 + n, 190.5),
    point('conventional', 8, n, n === 1 ? 249 : n === 2 ? 434 : 350, 593),
  ]);
  const spec = fig7Chart({ preset: 'paper-2012', sizeBytes: 1 << 20, fig7: { points, fidelity } } as never, '1 MiB') as unknown as { data: { values: { pairs: number; series: string; source: string; mbPerSec: number; label: string }[] }; layer: Layer[] };
  const text = JSON.stringify(spec);
  assert.doesNotMatch(text, /predicted/, 'not called a prediction');
  assert.match(text, /ceiling \(upper bound\)/);
  const textLayers = spec.layer.filter((l) => l.mark.type === 'text') as (Layer & { mark: { dy: number } })[];
  assert.equal(textLayers.length, 2, 'labels above and below their points');
  // Where each label lands: its side (the layer whose filter takes its series) and its value.
  const below = JSON.stringify(textLayers.find((l) => l.mark.dy > 0)!.transform);
  const labelled = spec.data.values.filter((v) => v.source === 'model' && v.label !== '');
  for (const a of labelled) {
    for (const b of labelled) {
      if (a === b || a.pairs !== b.pairs) continue;
      const side = (v: { series: string }) => below.includes(`"${v.series}"`);
      if (side(a) !== side(b)) continue;
      assert.ok(Math.abs(a.mbPerSec - b.mbPerSec) >= 0.04 * 710, `${a.series} ${a.label} and ${b.series} ${b.label} at ${a.pairs} pairs overprint`);
    }
  }
  for (const n of [1, 2, 4, 8]) assert.ok(labelled.some((v) => v.pairs === n && v.series === 'direct x8'), `direct x8 labelled at ${n}`);
});

test('a sweep chart: titles in words, ticks at the swept values as given, sizes in units', () => {
  const r = {
    preset: 'paper-2012',
    via: 'dc-buffer',
    sizeBytes: 64 << 20,
    seed: 1,
    metric: 'mbPerSec',
    fidelity,
    params: [{ name: 'host.lanes', values: [1, 2, 4, 8] }],
    rows: [1, 2, 4, 8].map((n) => ({ params: { 'host.lanes': n }, value: 249 })),
  } as unknown as SweepResult;
  const spec = sweepChart(r) as unknown as { title: { text: string; subtitle: string[] }; encoding: { x: { axis: { values: number[]; labelExpr: string } }; y: { title: string } } };
  assert.equal(spec.title.text, 'Bandwidth against host.lanes');
  assert.equal(spec.encoding.y.title, 'Bandwidth (MB/s)');
  assert.match(spec.title.subtitle[0], /direct move of 64 MiB/);
  assert.doesNotMatch(spec.title.subtitle[0], /67108864/);
  assert.deepEqual(spec.encoding.x.axis.values, [1, 2, 4, 8]);
  assert.match(spec.encoding.x.axis.labelExpr, /datum\.value == 8 \? '8'/);
  const chunk = sweepChart({ ...r, params: [{ name: 'chunk', values: [65536, 131072] }], rows: [65536, 131072].map((n) => ({ params: { chunk: n }, value: 1 })) } as unknown as SweepResult) as unknown as { encoding: { x: { axis: { labelExpr: string } } } };
  assert.match(chunk.encoding.x.axis.labelExpr, /'64 KiB'.*'128 KiB'/);
});
