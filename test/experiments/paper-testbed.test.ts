/**
 * The paper's values and bounds describe the paper's testbed only. `repro` on another testbed (the
 * `modern` preset, or paper-2012 with a parameter the paper states changed) shows no paper values,
 * checks no bound (so it does not fail), and says why; the charts scale to the model's values.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { paperTestbedDifferences } from '../../src/experiments/paper.js';
import { fig5Chart, fig6Chart, reproduce } from '../../src/experiments/repro.js';
import { reproMarkdown, reproTables } from '../../src/experiments/report.js';
import { loadTopology } from '../../src/topology/load.js';
import { applySettings } from '../../src/topology/params.js';

test('the paper testbed is recognised by the parameters the paper states', () => {
  const paper = loadTopology('paper-2012');
  assert.deepEqual(paperTestbedDifferences(paper), []);
  assert.deepEqual(paperTestbedDifferences(applySettings(paper, ['ssd.readMBps=3000', 'host.lanes=1']).topology), [], 'values the paper does not state keep its testbed');
  assert.deepEqual(paperTestbedDifferences(applySettings(paper, ['boxes.0.slots.1.ssd.writeMBps=500']).topology), ['ssd.writeMBps 500 (paper: 250)']);
  assert.deepEqual(paperTestbedDifferences(loadTopology('modern')), ['host.link.generation 4 (paper: 1)', 'ethernet.rateGbps 100 (paper: 10)', 'ssd.writeMBps 5000 (paper: 250)']);
});

test('repro on modern: no paper values, no bounds checked and the report says why; charts in Gen4 and to scale', async () => {
  const r = await reproduce({ topology: loadTopology('modern'), runs: 1, sizeBytes: 2 << 20, threads: 2 });
  assert.deepEqual(r.bounds, []);
  assert.deepEqual(r.testbed, { hostLinkGeneration: 4, differsFromPaper: paperTestbedDifferences(loadTopology('modern')) });
  for (const b of r.fig5!.bars) assert.equal(b.paperMbPerSec, null);
  for (const p of r.fig6!.points) assert.equal(p.paperMbPerSec, null);
  const text = reproTables(r);
  assert.match(text, /^Fidelity bounds: not checked: the paper's values and bounds are for its own testbed, and `modern` differs \(host\.link\.generation 4 \(paper: 1\);/m);
  assert.doesNotMatch(text, /paper: 86%|~250/);
  assert.match(reproMarkdown(r, { wallSeconds: 1 }), /## Fidelity bounds\n\nnot checked: /);

  const chart = JSON.stringify(fig5Chart(r));
  assert.match(chart, /Server-side bridge PCIe link \(Gen4\)/);
  assert.match(chart, /x8 \(126 Gb\/s\)/);
  assert.doesNotMatch(chart, /diamond/);
  const top = Math.max(...r.fig5!.bars.map((b) => b.mbPerSec));
  const domain = (c: unknown) => (JSON.stringify(c).match(/"domain":\[0,(\d+)\]/) ?? [])[1];
  assert.ok(Number(domain(fig5Chart(r))) > top, `the Fig. 5 axis (${domain(fig5Chart(r))}) holds the bars (${top})`);
  assert.ok(Number(domain(fig6Chart(r))) > Math.max(...r.fig6!.points.map((p) => p.mbPerSec)));
});
