import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fig5Chart, fig6Chart, reproduce } from '../../src/experiments/repro.js';
import { reproMarkdown, reproTables } from '../../src/experiments/report.js';
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
  // The destination's read tags bind: its reads of host memory queue on the x1 host link and in the host bridge.
  assert.equal(conv.limit.binds, 'read-tags');
  assert.match(conv.limit.explanation, /^read-tag bound: sdb's read tags all in use 9\d% of the time: .* mean read round trip = 1[23]\d MB\/s \(requests queued .*host link x1 upstream/);

  const pts = r.fig6!.points;
  assert.deepEqual(
    pts.map((p) => p.commands),
    [1, 2, 3, 4, 5, 6, 7, 8],
  );
  assert.equal(pts[0].limit.binds, 'commands');
  assert.match(pts[0].limit.explanation, /one command at a time/);
  assert.match(pts[1].limit.resource, /sdb flash write/);
});

test('results are the same with one thread and with two', async () => {
  const t = loadTopology('paper-2012');
  const a = await reproduce({ topology: t, runs: 2, sizeBytes: 2 << 20, only: ['fig5'], threads: 1 });
  const b = await reproduce({ topology: t, runs: 2, sizeBytes: 2 << 20, only: ['fig5'], threads: 2 });
  assert.equal(JSON.stringify(a), JSON.stringify(b));
  assert.equal(a.fig6, undefined);
});

test('every bar and point says how it was obtained, and the report gives the wall time', async () => {
  const t = loadTopology('paper-2012');
  for (const fidelity of ['fast', 'full'] as const) {
    const r = await reproduce({ topology: t, runs: 2, sizeBytes: 2 << 20, threads: 1, fidelity });
    assert.equal(r.fidelity.mode, fidelity);
    assert.equal(r.fidelity.moves, 4 * 2 + 8);
    for (const b of r.fig5!.bars) {
      assert.equal(b.fidelity.moves, 2);
      assert.equal(b.runsFidelity.length, 2);
      assert.ok(b.fidelity.detailedChunks <= b.fidelity.totalChunks);
    }
    for (const p of r.fig6!.points) assert.equal(p.fidelity.mode, fidelity);
    if (fidelity === 'full') assert.equal(r.fidelity.exactMoves, r.fidelity.moves, 'full simulates every TLP');

    const md = reproMarkdown(r, { wallSeconds: 12.34 });
    assert.match(md, /16 moves in 12\.3 s of wall time/);
    assert.match(md, new RegExp(`fidelity: ${fidelity} \\(`));
    assert.match(md, /\| method \| chunks in detail/);
    assert.match(reproTables(r), new RegExp(`fidelity: ${fidelity} \\(`));
    for (const chart of [fig5Chart(r), fig6Chart(r)]) {
      const subtitle = (chart.title as { subtitle: string[] }).subtitle;
      assert.match(subtitle[subtitle.length - 1], new RegExp(`^fidelity: ${fidelity} \\(`));
    }
  }
});

test('charts of a burst-granularity run say so under the fidelity line; per-TLP charts do not', async () => {
  const t = loadTopology('paper-2012');
  const burst = await reproduce({ topology: t, runs: 1, sizeBytes: 1 << 20, threads: 1, fidelity: 'full', granularity: 'burst', only: ['fig5'] });
  const subtitle = (fig5Chart(burst).title as { subtitle: string[] }).subtitle;
  assert.match(subtitle[subtitle.length - 2], /^fidelity: full \(/);
  assert.match(subtitle[subtitle.length - 1], /^granularity: burst \(bursts of up to 65536 B; simulated time within 3% of per-TLP's/);
  const tlp = await reproduce({ topology: t, runs: 1, sizeBytes: 1 << 20, threads: 1, fidelity: 'full', only: ['fig5'] });
  assert.ok(!(fig5Chart(tlp).title as { subtitle: string[] }).subtitle.some((l) => l.startsWith('granularity')));
});
