import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runCopy, type CopyRequest } from '../../src/runtime/copy.js';
import { loadTopology } from '../../src/topology/load.js';
import { DconnectError } from '../../src/core/errors.js';
import { WORKER_MIN_BYTES } from '../../src/devices/pattern-digest.js';
import { expectedPattern } from '../../src/devices/sparse-memory.js';
import { createHash } from 'node:crypto';

const MiB = 1 << 20;

function copy(over: Partial<CopyRequest> & { hostLanes?: number } = {}) {
  const topology = loadTopology('paper-2012');
  if (over.hostLanes) topology.host.link.lanes = over.hostLanes as 1;
  return runCopy({ topology, src: 'sda', srcOffset: 0, dst: 'sdb', dstOffset: 0, lengthBytes: 4 * MiB, via: 'dc-buffer', seed: 7, ...over });
}

test('direct move verifies and keeps data off the host link', () => {
  const r = copy();
  assert.equal(r.mode, 'direct');
  assert.equal(r.verified, true);
  assert.equal(r.bytes, 4 * MiB);
  // Only commands, PRP lists, completions and interrupts cross: far below 1% of the moved bytes.
  assert.ok(r.hostLink.upstreamPayloadBytes < 0.01 * r.bytes, `upstream ${r.hostLink.upstreamPayloadBytes}`);
  assert.ok(r.hostLink.downstreamPayloadBytes < 0.01 * r.bytes, `downstream ${r.hostLink.downstreamPayloadBytes}`);
  // The data went through the DC buffer's slot link in both directions.
  assert.ok(r.trace['box0.slot2.link.downstream'].MWrPayloadBytes >= r.bytes);
  assert.ok(r.trace['box0.slot2.link.upstream'].CplDPayloadBytes >= r.bytes);
  assert.equal(r.commands.read, 32);
  assert.equal(r.commands.write, 32);
  assert.ok(r.mbPerSec > 0 && r.simulatedSeconds > 0);
});

test('the root complex completes device reads in pieces of host.readCompletionBytes: the RCB, or combined up to the MPS', () => {
  const counts = ([128, 1024] as const).map((rcb) => {
    const topology = loadTopology('paper-2012-live');
    topology.host.readCompletionBytes = rcb;
    const r = runCopy({ topology, src: 'sda', srcOffset: 0, dst: 'sdb', dstOffset: 0, lengthBytes: MiB, via: 'host', seed: 7 });
    assert.equal(r.verified, true);
    const down = r.trace['hostLink.downstream'];
    assert.ok(down.CplDPayloadBytes >= MiB);
    return down.CplD;
  });
  // The destination drive reads the MiB (and its PRP lists) from host memory: ~8192 completions of 128 B, ~1024 of 1 KiB.
  assert.ok(counts[0] >= MiB / 128 && counts[0] < MiB / 128 + 64, `${counts[0]} completions at 128`);
  assert.ok(counts[1] >= MiB / 1024 && counts[1] < MiB / 1024 + 64, `${counts[1]} completions at 1024`);
});

test('conventional move carries the data across the host link in both directions', () => {
  const r = copy({ via: 'host' });
  assert.equal(r.mode, 'conventional');
  assert.equal(r.verified, true);
  assert.ok(r.hostLink.upstreamPayloadBytes >= r.bytes);
  assert.ok(r.hostLink.downstreamPayloadBytes >= r.bytes);
  assert.equal(r.trace['box0.slot2.link.downstream'].MWrPayloadBytes, 0, 'the DC buffer is not used');
});

test('x1 host link: direct beats conventional; x8: they are close', () => {
  const d1 = copy({ hostLanes: 1, lengthBytes: 8 * MiB });
  const c1 = copy({ hostLanes: 1, lengthBytes: 8 * MiB, via: 'host' });
  assert.ok(d1.mbPerSec > 1.5 * c1.mbPerSec, `direct ${d1.mbPerSec} vs conventional ${c1.mbPerSec}`);
  const c8 = copy({ hostLanes: 8, lengthBytes: 8 * MiB, via: 'host' });
  assert.ok(c8.mbPerSec > 0.9 * d1.mbPerSec, `x8 conventional ${c8.mbPerSec} vs direct ${d1.mbPerSec}`);
});

test('same seed gives byte-identical results; another seed moves other data', () => {
  const a = JSON.stringify(copy({ lengthBytes: 2 * MiB }));
  const b = JSON.stringify(copy({ lengthBytes: 2 * MiB }));
  assert.equal(a, b);
  const c = copy({ lengthBytes: 2 * MiB, seed: 8 });
  assert.notEqual(c.sha256, JSON.parse(a).sha256);
});

test('offsets, partial last chunk and a copy within one device', () => {
  const r = copy({ src: 'sda', srcOffset: 1 * MiB, dst: 'sda', dstOffset: 8 * MiB, lengthBytes: 3 * MiB + 4096, chunkBytes: 256 * 1024 });
  assert.equal(r.verified, true);
  assert.equal(r.commands.read, 13);
});

test('depth 1 serializes read and write; depth 2 overlaps them', () => {
  const d1 = copy({ depth: 1, lengthBytes: 4 * MiB });
  const d2 = copy({ depth: 2, lengthBytes: 4 * MiB });
  assert.ok(d2.mbPerSec > 1.3 * d1.mbPerSec, `depth 1 ${d1.mbPerSec}, depth 2 ${d2.mbPerSec}`);
});

test('bad requests fail before anything is written', () => {
  const cases: [Partial<CopyRequest>, string][] = [
    [{ src: 'sdz' }, 'UNKNOWN_DEVICE'],
    [{ dstOffset: 256e9 - 1 * MiB }, 'OUT_OF_RANGE'],
    [{ srcOffset: 100 }, 'UNALIGNED'],
    [{ lengthBytes: 1000 }, 'UNALIGNED'],
    [{ dst: 'sda', dstOffset: 1 * MiB }, 'OVERLAP'],
    [{ depth: 0 }, 'BAD_OPTION'],
    [{ chunkBytes: 64 * MiB, depth: 3 }, 'BAD_OPTION'],
  ];
  for (const [over, code] of cases) {
    assert.throws(() => copy(over), (e: unknown) => e instanceof DconnectError && e.code === code, `${JSON.stringify(over)} should fail with ${code}`);
  }
});

test('a large move reports the sha256 of the bytes it moved (the source digest is hashed on a second core)', () => {
  const lengthBytes = WORKER_MIN_BYTES + 4096;
  const r = copy({ srcOffset: 12 * MiB, dstOffset: 3 * MiB, lengthBytes, chunkBytes: 1 * MiB });
  assert.equal(r.verified, true);
  // The source holds the pattern seeded from (seed ^ 0x5eed), as runCopy documents.
  const want = createHash('sha256').update(expectedPattern((7 ^ 0x5eed) >>> 0, 12 * MiB, lengthBytes)).digest('hex');
  assert.equal(r.sha256, want);
});
