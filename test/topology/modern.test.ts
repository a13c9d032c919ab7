/**
 * The `modern` preset (docs/calibration.md, "The modern preset"): the parameters the calibration rests
 * on, and the direction of the results it predicts by hand. At the paper's multiplicity (3 commands of
 * 128 KiB) a direct move is bound by its commands' round trips (~3.0 GB/s, below the destination's
 * 5 GB/s), the same at host x8 and x1; a conventional move is slower at x8 (its writes read host memory
 * through the bridge window in 64 B completions) and far slower at x1 (the Gen4 x1 host link carries
 * the data both ways). With enough commands in flight a direct move reaches the destination's flash.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runCopy, type CopyResult } from '../../src/runtime/copy.js';
import { linkBytesPerSec } from '../../src/pcie/link-params.js';
import { loadTopology } from '../../src/topology/load.js';
import type { Topology } from '../../src/topology/schema.js';

const modern = loadTopology('modern');
const MiB = 2 ** 20;

test('modern: Gen4 links, 100GbE cut-through switches, 980 PRO-class SSDs, MPS 256', () => {
  assert.equal(modern.name, 'modern');
  assert.deepEqual([modern.host.link.generation, modern.host.link.lanes], [4, 8]);
  assert.deepEqual([modern.ssd.link.generation, modern.ssd.link.lanes], [4, 4]);
  assert.deepEqual([modern.dcBuffer.link.generation, modern.dcBuffer.link.lanes], [4, 8]);
  assert.equal(modern.ethernet.rateGbps, 100);
  assert.equal(modern.ethernet.switchForwarding, 'cut-through');
  assert.deepEqual([modern.pcie.mpsBytes, modern.pcie.mrrsBytes], [256, 512]);
  assert.deepEqual([modern.ssd.readMBps, modern.ssd.writeMBps], [7000, 5000]);
  assert.equal(modern.dcBuffer.ddrMBps, 12800);
  // 16 GT/s with 128b/130b: 1.969 GB/s a lane each way; the SSD's x4 link is above its 7 GB/s reads.
  assert.ok(Math.abs(linkBytesPerSec(4, 1) - 1.969e9) < 1e6);
  assert.ok(linkBytesPerSec(4, 4) > modern.ssd.readMBps * 1e6);
  // Everything else is the paper's testbed: one box, two SSDs and the DC buffer, two switch hops.
  assert.deepEqual(modern.boxes[0].slots.map((s) => s.kind), ['ssd', 'ssd', 'dc-buffer']);
  assert.equal(modern.ethernet.switchHops, 2);
  assert.equal(loadTopology('paper-2012').ethernet.switchForwarding, 'store-and-forward');
});

function move(via: 'dc-buffer' | 'host', lanes: number, depth?: number): CopyResult {
  const topology: Topology = { ...modern, host: { ...modern.host, link: { ...modern.host.link, lanes } } };
  const r = runCopy({ topology, src: 'sda', srcOffset: 0, dst: 'sdb', dstOffset: 0, lengthBytes: 16 * MiB, via, seed: 1, depth, sha256: false });
  assert.equal(r.verified, true, `${via} x${lanes} verified`);
  return r;
}

test('modern, 16 MiB moves: direct beats conventional at x8 and far more at x1, as predicted', () => {
  const d8 = move('dc-buffer', 8);
  const d1 = move('dc-buffer', 1);
  const c8 = move('host', 8);
  const c1 = move('host', 1);
  const write = modern.ssd.writeMBps;
  // Direct: latency-bound at 3 commands, well below the destination's flash, and blind to the host link.
  assert.ok(d8.mbPerSec < 0.8 * write, `direct x8 ${d8.mbPerSec} MB/s is bound by commands in flight, not flash`);
  assert.ok(Math.abs(d1.mbPerSec / d8.mbPerSec - 1) < 0.02, `direct x1 ${d1.mbPerSec} = direct x8 ${d8.mbPerSec}`);
  assert.ok((d8.hostLink.upstreamPayloadBytes + d8.hostLink.downstreamPayloadBytes) / d8.bytes < 0.01, 'direct: only commands cross the host link');
  // Conventional: below direct at x8, and at x1 below the Gen4 x1 link's 1.47 GB/s of 64 B completions.
  assert.ok(c8.mbPerSec < d8.mbPerSec, `conventional x8 ${c8.mbPerSec} < direct ${d8.mbPerSec}`);
  assert.ok(c1.mbPerSec < 1470, `conventional x1 ${c1.mbPerSec} MB/s`);
  assert.ok(d1.mbPerSec / c1.mbPerSec > 2, `direct / conventional at x1 = ${d1.mbPerSec / c1.mbPerSec}`);
  assert.ok(c1.hostLink.upstreamPayloadBytes >= c1.bytes && c1.hostLink.downstreamPayloadBytes >= c1.bytes, 'conventional: the data crosses the host link both ways');
});

test('modern: with 8 commands in flight a direct move reaches the destination flash', () => {
  const r = move('dc-buffer', 8, 8);
  assert.ok(r.mbPerSec > 0.95 * modern.ssd.writeMBps, `${r.mbPerSec} MB/s at depth 8`);
  assert.ok(r.mbPerSec <= modern.ssd.writeMBps, 'never above the flash');
});
