import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderChart } from '../../src/experiments/charts.js';
import { relaysChart, relaysParagraph } from '../../src/experiments/relays.js';
import { reproduce, reproJobs } from '../../src/experiments/repro.js';
import { reproMarkdown, reproTables } from '../../src/experiments/report.js';
import { loadTopology } from '../../src/topology/load.js';

test('repro --only relays: Fig. 5\'s move through the DC buffer, the destination\'s CMB and host memory, x8 and x1; direct relays off the host link, the CMB given to the SSDs and said so', async () => {
  const plan = { topology: loadTopology('paper-2012'), runs: 1, sizeBytes: 8 << 20, only: ['relays' as const] };
  assert.deepEqual(
    reproJobs(plan).map((j) => j.label),
    ['relays dc-buffer x8 seed 1', 'relays cmb x8 seed 1', 'relays host x8 seed 1', 'relays dc-buffer x1 seed 1', 'relays cmb x1 seed 1', 'relays host x1 seed 1'],
  );
  assert.ok(reproJobs(plan).every((j) => j.topology.ssd.cmbSizeBytes === 32 << 20));
  const r = await reproduce({ ...plan, threads: 1 });
  const f = r.relays!;
  assert.equal(r.fig5, undefined);
  assert.deepEqual([f.cmbSizeBytes, f.cmbAdded], [32 << 20, true]);
  const bar = (lanes: number, via: string) => f.bars.find((b) => b.hostLanes === lanes && b.via === via)!;
  for (const lanes of [8, 1]) {
    for (const via of ['dc-buffer', 'cmb']) assert.ok(bar(lanes, via).hostLinkBytesPerByte < 0.01, `${via} x${lanes}: data off the host link`);
    assert.ok(bar(lanes, 'host').hostLinkBytesPerByte > 1.99, 'conventional: every byte twice');
  }
  assert.ok(bar(1, 'cmb').mbPerSec > 1.7 * bar(1, 'host').mbPerSec, 'at x1 the CMB relay, like the DC buffer, beats host memory by the paper\'s margin');
  assert.ok(Math.abs(bar(1, 'cmb').mbPerSec / bar(1, 'dc-buffer').mbPerSec - 1) < 0.02, 'both direct relays at the destination\'s write rate');
  const text = relaysParagraph(f);
  assert.match(text, /At x1: DC buffer \d+\.\d MB\/s/);
  assert.match(text, /destination's CMB/);
  assert.match(reproMarkdown(r, { wallSeconds: 1 }), /!\[Relays\]\(relays\.png\)/);
  assert.match(reproTables(r), /relay in\s+MB\/s/);
  const { svg } = await renderChart(relaysChart(f, { sizeBytes: r.sizeBytes, runs: r.runs, preset: r.preset, generation: 1 }));
  for (const label of ['DC buffer', "destination's CMB", 'host memory', 'x1 (2 Gb/s)']) assert.ok(svg.includes(label.replace("'", '&#x27;')) || svg.includes(label), label);
});
