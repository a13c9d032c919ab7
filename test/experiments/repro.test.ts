import { test } from 'node:test';
import assert from 'node:assert/strict';
import { reproduce } from '../../src/experiments/repro.js';
import { loadTopology } from '../../src/topology/load.js';

test('the paper preset meets every fidelity bound (16 MiB moves, 2 runs per bar)', async () => {
  const r = await reproduce({ topology: loadTopology('paper-2012'), runs: 2, sizeBytes: 16 << 20 });
  for (const b of r.bounds) assert.ok(b.ok, `${b.name}: ${b.value} not in ${b.range}`);
  assert.equal(r.bounds.length, 6);

  const bars = r.fig5!.bars;
  assert.deepEqual(
    bars.map((b) => [b.hostLanes, b.mode, b.runs]),
    [
      [8, 'direct', 2],
      [8, 'conventional', 2],
      [1, 'direct', 2],
      [1, 'conventional', 2],
    ],
  );
  for (const b of bars) {
    assert.equal(typeof b.mbPerSec, 'number');
    assert.ok(b.stdevMbPerSec >= 0);
    assert.equal(b.runsMbPerSec.length, 2);
    assert.notEqual(b.runsMbPerSec[0], b.runsMbPerSec[1], 'runs differ by seed (flash latency jitter)');
  }
  // What limits each bar comes from the trace counters.
  const direct = bars.find((b) => b.hostLanes === 1 && b.mode === 'direct')!;
  assert.equal(direct.limit.saturated, true);
  assert.match(direct.limit.resource, /sdb flash write/);
  const conv = bars.find((b) => b.hostLanes === 1 && b.mode === 'conventional')!;
  assert.equal(conv.limit.saturated, false);
  assert.match(conv.limit.explanation, /posted writes/);

  const pts = r.fig6!.points;
  assert.deepEqual(
    pts.map((p) => p.commands),
    [1, 2, 3, 4, 5, 6, 7, 8],
  );
  assert.match(pts[0].limit.explanation, /one command at a time/);
  assert.match(pts[1].limit.resource, /sdb flash write/);
});

test('results are the same with one thread and with two', async () => {
  const t = loadTopology('paper-2012');
  const a = await reproduce({ topology: t, runs: 2, sizeBytes: 2 << 20, only: 'fig5', threads: 1 });
  const b = await reproduce({ topology: t, runs: 2, sizeBytes: 2 << 20, only: 'fig5', threads: 2 });
  assert.equal(JSON.stringify(a), JSON.stringify(b));
  assert.equal(a.fig6, undefined);
});
