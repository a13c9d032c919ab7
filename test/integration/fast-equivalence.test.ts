import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runCopy, type CopyRequest, type CopyResult } from '../../src/runtime/copy.js';
import { loadTopology } from '../../src/topology/load.js';

/**
 * The fast fidelity against the per-TLP reference, side by side, on a matrix of small moves (sizes
 * where the full run takes seconds): direct and conventional; host lanes 1, 2 and 8; depth 1, 2, 3
 * and 8; chunks of 4 KiB, 128 KiB and 1 MiB; a length that is not a whole number of chunks; jitter on
 * and off; offsets not at zero.
 *  - exact results: same end time to the picosecond, same completion time for every chunk, same counters;
 *  - statistical results: the full run's bandwidth inside the reported interval, the interval <= 0.5%,
 *    and the host link's payload bytes and TLP counts within the stated error;
 *  - always: every byte verified, the destination's sha256 equal to the full run's.
 */
interface Case {
  name: string;
  via: 'dc-buffer' | 'host';
  lanes: number;
  depth: number;
  chunk: number;
  length: number;
  jitter: number;
  srcOffset?: number;
  dstOffset?: number;
}
const KiB = 1024;
const MiB = 1024 * KiB;
const CASES: Case[] = [
  { name: 'direct x8 depth 3, 128 KiB', via: 'dc-buffer', lanes: 8, depth: 3, chunk: 128 * KiB, length: 24 * MiB, jitter: 0.1 },
  { name: 'conventional x1 depth 3, 128 KiB', via: 'host', lanes: 1, depth: 3, chunk: 128 * KiB, length: 24 * MiB, jitter: 0.1 },
  { name: 'conventional x2 depth 2, 128 KiB', via: 'host', lanes: 2, depth: 2, chunk: 128 * KiB, length: 24 * MiB, jitter: 0.1 },
  { name: 'direct x1 depth 1, 128 KiB', via: 'dc-buffer', lanes: 1, depth: 1, chunk: 128 * KiB, length: 24 * MiB, jitter: 0.1 },
  { name: 'direct x8 depth 8, 1 MiB', via: 'dc-buffer', lanes: 8, depth: 8, chunk: MiB, length: 128 * MiB, jitter: 0.1 },
  { name: 'conventional x8 depth 8, 4 KiB', via: 'host', lanes: 8, depth: 8, chunk: 4 * KiB, length: 4 * MiB, jitter: 0.1 },
  { name: 'direct x2 depth 2, 4 KiB, no jitter', via: 'dc-buffer', lanes: 2, depth: 2, chunk: 4 * KiB, length: 4 * MiB, jitter: 0 },
  { name: 'conventional x1 depth 3, 128 KiB, no jitter', via: 'host', lanes: 1, depth: 3, chunk: 128 * KiB, length: 24 * MiB, jitter: 0 },
  { name: 'direct x8 depth 3, partial last chunk, offsets', via: 'dc-buffer', lanes: 8, depth: 3, chunk: 128 * KiB, length: 24 * MiB + 12 * KiB, jitter: 0.1, srcOffset: 1 << 30, dstOffset: 4 * KiB },
  { name: 'conventional x8 depth 1, 4 KiB, offsets, no jitter', via: 'host', lanes: 8, depth: 1, chunk: 4 * KiB, length: 2 * MiB + 4 * KiB, jitter: 0, srcOffset: 512 * KiB, dstOffset: 2 * MiB },
];

function run(c: Case, fidelity: 'fast' | 'full'): CopyResult {
  const topology = loadTopology('paper-2012');
  topology.host.link.lanes = c.lanes;
  topology.ssd.latencyJitterFraction = c.jitter;
  const req: CopyRequest = { topology, src: 'sda', srcOffset: c.srcOffset ?? 0, dst: 'sdb', dstOffset: c.dstOffset ?? 0, lengthBytes: c.length, chunkBytes: c.chunk, depth: c.depth, via: c.via, seed: 3, fidelity, recordChunkTimes: true };
  return runCopy(req);
}

const statistical: { name: string; covered: boolean }[] = [];

for (const c of CASES) {
  test(`fast equals full: ${c.name}`, () => {
    const fast = run(c, 'fast');
    const full = run(c, 'full');
    assert.equal(fast.verified, true);
    assert.equal(full.verified, true);
    assert.equal(fast.sha256, full.sha256, 'the destination holds the same bytes');
    assert.equal(fast.commands.read, full.commands.read);
    assert.equal(fast.commands.write, full.commands.write);
    assert.equal(fast.fidelity.mode, 'fast');
    assert.equal(fast.fidelity.totalChunks, Math.ceil(c.length / c.chunk));
    if (fast.fidelity.exact) {
      assert.equal(fast.simulatedSeconds, full.simulatedSeconds, 'same end time to the picosecond');
      assert.deepEqual(fast.chunkDonePs, full.chunkDonePs, 'same completion time for every chunk');
      assert.deepEqual(fast.trace, full.trace, 'same trace counters');
      assert.deepEqual(fast.hostLink, full.hostLink);
      return;
    }
    // Statistical: the fast path did jump, and says by how much it may be off.
    const e = fast.fidelity.relativeError99;
    assert.ok(fast.fidelity.detailedChunks < fast.fidelity.totalChunks);
    assert.ok(e > 0 && e <= 0.005, `interval ±${(e * 100).toFixed(3)}% must be at most 0.5%`);
    const off = Math.abs(fast.mbPerSec - full.mbPerSec) / fast.mbPerSec;
    statistical.push({ name: c.name, covered: off <= e });
    for (const k of ['upstreamPayloadBytes', 'downstreamPayloadBytes', 'upstreamTlps', 'downstreamTlps'] as const) {
      const a = fast.hostLink[k];
      const b = full.hostLink[k];
      assert.ok(Math.abs(a - b) <= Math.max(1, e * b), `host link ${k}: fast ${a}, full ${b}, stated error ±${(e * 100).toFixed(3)}%`);
    }
  });
}

test('the statistical intervals cover the full runs at least at their nominal 99.7%', () => {
  assert.ok(statistical.length >= 5, `${statistical.length} statistical results in the matrix`);
  const covered = statistical.filter((s) => s.covered).length;
  // With fewer than 333 intervals, 99.7% coverage means every one.
  assert.equal(covered, statistical.length, `not covered: ${statistical.filter((s) => !s.covered).map((s) => s.name).join('; ')}`);
});

test('negative control: a move whose flash latencies are drawn at random never takes an exact jump', () => {
  const topology = loadTopology('paper-2012');
  topology.ssd.latencyJitterFraction = 1e-6; // a few ps of randomness: the state never repeats
  const r = runCopy({ topology, src: 'sda', srcOffset: 0, dst: 'sdb', dstOffset: 0, lengthBytes: 16 * MiB, via: 'dc-buffer', seed: 1, fidelity: 'fast' });
  assert.equal(r.verified, true);
  assert.ok(!r.fidelity.method.startsWith('exact: the fabric'), r.fidelity.method);
  assert.ok(r.fidelity.exact === false || r.fidelity.detailedChunks === r.fidelity.totalChunks);
});

test('--fidelity full is the per-TLP reference: every chunk detailed, exact, nothing extrapolated', () => {
  const topology = loadTopology('paper-2012');
  const r = runCopy({ topology, src: 'sda', srcOffset: 0, dst: 'sdb', dstOffset: 0, lengthBytes: 4 * MiB, via: 'dc-buffer', seed: 1, fidelity: 'full' });
  assert.deepEqual(r.fidelity, { mode: 'full', exact: true, relativeError99: 0, detailedChunks: 32, totalChunks: 32, method: 'full: every TLP simulated' });
});
