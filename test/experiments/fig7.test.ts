import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DconnectError } from '../../src/core/errors.js';
import { parseFigures } from '../../src/cli/experiments.js';
import { fig7Chart, fig7Jobs, fig7Topology } from '../../src/experiments/fig7.js';
import { predictFig7 } from '../../src/experiments/fig7-predict.js';
import { reproduce, reproJobs } from '../../src/experiments/repro.js';
import { reproMarkdown, reproTables } from '../../src/experiments/report.js';
import { loadTopology } from '../../src/topology/load.js';

test('Fig. 7 runs on the preset\'s box grown to 16 SSDs: 16 points, 1 to 8 pairs', () => {
  const t = fig7Topology(loadTopology('paper-2012'));
  assert.equal(t.boxes.length, 1);
  assert.equal(t.boxes[0].slots.filter((s) => s.kind === 'ssd').length, 16);
  assert.equal(t.boxes[0].slots.filter((s) => s.kind === 'dc-buffer').length, 1);
  const jobs = fig7Jobs({ topology: loadTopology('paper-2012'), sizeBytes: 1 << 20 });
  assert.equal(jobs.length, 16);
  assert.deepEqual([...new Set(jobs.map((j) => j.pairs))], [1, 2, 4, 8]);
  assert.equal(reproJobs({ topology: loadTopology('paper-2012'), runs: 1, sizeBytes: 1 << 20 }).length, 4 + 8, 'the default stays the paper\'s two figures');
});

test('the hand prediction on paper-2012: SSDs, then the DC buffer\'s Ethernet port; conventional by the host link or the host bridge\'s port', () => {
  const t = fig7Topology(loadTopology('paper-2012'));
  const d1 = predictFig7(t, 'direct', 1, 1);
  assert.equal(d1.mbPerSec, 250);
  const d8 = predictFig7(t, 'direct', 1, 8);
  assert.match(d8.resource, /DC buffer's Ethernet port/);
  // 10 Gb/s x 128 B of payload per (194 wire bytes of write + 84 x 128/512 of read request + 84/8 of ack).
  assert.ok(Math.abs(d8.mbPerSec - (1250 * 128) / (194 + 21 + 10.5)) < 0.01, String(d8.mbPerSec));
  assert.match(predictFig7(t, 'conventional', 1, 4).resource, /host link Gen1 x1 downstream/);
  assert.match(predictFig7(t, 'conventional', 8, 8).resource, /host-side bridge's Ethernet port/);
});

test('repro --only fig7 assembles points with their prediction, limit and fidelity; tables, report and chart say them', async () => {
  const r = await reproduce({ topology: loadTopology('paper-2012'), runs: 1, sizeBytes: 1 << 20, only: ['fig7'], threads: 2 });
  assert.equal(r.fig5, undefined);
  assert.equal(r.fig7!.points.length, 16);
  const p = r.fig7!.points.find((x) => x.mode === 'direct' && x.hostLanes === 1 && x.pairs === 2)!;
  assert.ok(p.mbPerSec > 1.5 * r.fig7!.points.find((x) => x.mode === 'direct' && x.hostLanes === 1 && x.pairs === 1)!.mbPerSec);
  assert.ok(Math.abs(p.perPairMbPerSec * 2 - p.mbPerSec) < 1e-9);
  assert.ok(p.predicted.mbPerSec > 0 && p.limit.explanation.length > 0);
  assert.match(reproTables(r), /Fig\. 7 \(beyond the paper\)/);
  assert.match(reproMarkdown(r, { wallSeconds: 1 }), /!\[Fig\. 7\]\(fig7\.png\)/);
  const spec = JSON.stringify(fig7Chart(r, '1 MiB'));
  assert.match(spec, /Concurrent source\/destination pairs/);
});

test('--only takes a comma-separated list of known figures', () => {
  assert.deepEqual(parseFigures('fig7'), ['fig7']);
  assert.deepEqual(parseFigures('fig7,fig5'), ['fig5', 'fig7']);
  assert.throws(() => parseFigures('fig5,fig9'), (e: unknown) => e instanceof DconnectError && e.code === 'BAD_OPTION' && /'fig9' is not a figure/.test(e.message));
});
