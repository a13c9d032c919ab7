import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DconnectError } from '../../src/core/errors.js';
import { runCopy, runMoves, type MovesRequest } from '../../src/runtime/copy.js';
import { loadTopology } from '../../src/topology/load.js';
import type { Topology } from '../../src/topology/schema.js';

const MiB = 1 << 20;

/** paper-2012 with `ssds` drives and the DC buffer in one box, host link x1. */
function box(ssds: number): Topology {
  const t = loadTopology('paper-2012');
  t.host.link.lanes = 1;
  t.boxes = [{ name: 'box0', slots: [...Array.from({ length: ssds }, (_, i) => ({ kind: 'ssd' as const, serial: `S${i}` })), { kind: 'dc-buffer' as const }] }];
  return t;
}

const twoPairs = (over: Partial<MovesRequest> = {}): MovesRequest => ({
  topology: box(4),
  pairs: [
    { src: 'sda', srcOffset: 0, dst: 'sdb', dstOffset: 0 },
    { src: 'sdc', srcOffset: 0, dst: 'sdd', dstOffset: 0 },
  ],
  lengthBytes: 16 * MiB,
  via: 'dc-buffer',
  seed: 4,
  ...over,
});

test('two direct moves at once: each verified with its own data, aggregate about twice one move, data off the host link', () => {
  const r = runMoves(twoPairs());
  assert.equal(r.moves.length, 2);
  for (const m of r.moves) {
    assert.equal(m.verified, true);
    assert.equal(m.relay, 'dcbuf0');
  }
  assert.notEqual(r.moves[0].sha256, r.moves[1].sha256, 'each source holds its own data');
  const one = runCopy({ topology: box(4), src: 'sda', srcOffset: 0, dst: 'sdb', dstOffset: 0, lengthBytes: 16 * MiB, via: 'dc-buffer', seed: 4 });
  assert.equal(r.moves[0].sha256, one.sha256, 'move 1 carries the single move\'s data');
  assert.ok(r.aggregate.mbPerSec >= 1.8 * one.mbPerSec, `aggregate ${r.aggregate.mbPerSec} vs one ${one.mbPerSec}`);
  assert.equal(r.aggregate.bytes, 32 * MiB);
  assert.ok(r.hostLink.downstreamPayloadBytes < 0.01 * r.aggregate.bytes);
  assert.ok(r.trace['box0.slot4.link.downstream'].MWrPayloadBytes >= r.aggregate.bytes, 'both moves went through the DC buffer');
});

test('two conventional moves: every byte crosses the host link twice', () => {
  const r = runMoves(twoPairs({ via: 'host' }));
  assert.ok(r.moves.every((m) => m.verified && m.relay === 'host memory'));
  assert.ok(r.hostLink.upstreamPayloadBytes >= r.aggregate.bytes);
  assert.ok(r.hostLink.downstreamPayloadBytes >= r.aggregate.bytes);
});

test('same seed, same result', () => {
  assert.deepEqual(runMoves(twoPairs({ lengthBytes: 4 * MiB })), runMoves(twoPairs({ lengthBytes: 4 * MiB })));
});

test('the joint fast path against the per-TLP run: within its stated interval, same bytes', () => {
  const fast = runMoves(twoPairs({ lengthBytes: 128 * MiB, fidelity: 'fast' }));
  const full = runMoves(twoPairs({ lengthBytes: 128 * MiB, fidelity: 'full' }));
  assert.ok(fast.fidelity.detailedChunks < fast.fidelity.totalChunks, 'the fast run jumped');
  assert.match(fast.fidelity.method, /2 moves jumped together/);
  const e = fast.fidelity.relativeError99;
  assert.ok(e > 0 && e <= 0.01, `interval ±${e}`);
  for (let i = 0; i < 2; i++) {
    assert.equal(fast.moves[i].sha256, full.moves[i].sha256);
    const off = Math.abs(fast.moves[i].mbPerSec - full.moves[i].mbPerSec) / fast.moves[i].mbPerSec;
    assert.ok(off <= fast.moves[i].fidelity.relativeError99, `move ${i + 1}: off ${off}, interval ${fast.moves[i].fidelity.relativeError99}`);
  }
  const aggOff = Math.abs(fast.aggregate.mbPerSec - full.aggregate.mbPerSec) / fast.aggregate.mbPerSec;
  assert.ok(aggOff <= e, `aggregate off ${aggOff}, interval ${e}`);
  for (const k of ['upstreamTlps', 'downstreamTlps'] as const) assert.ok(Math.abs(fast.hostLink[k] - full.hostLink[k]) <= Math.max(1, e * full.hostLink[k]), k);
});

test('concurrent moves may not share bytes, and their relay slots must fit the DC buffer', () => {
  const code = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      assert.ok(e instanceof DconnectError, String(e));
      return `${e.code}: ${e.message}`;
    }
    return 'no error';
  };
  const overlap = twoPairs({ pairs: [{ src: 'sda', srcOffset: 0, dst: 'sdb', dstOffset: 0 }, { src: 'sdc', srcOffset: 0, dst: 'sdb', dstOffset: 8 * MiB }] });
  assert.match(code(() => runMoves(overlap)), /OVERLAP: move 1's destination and move 2's destination overlap on sdb/);
  const t = box(4);
  t.dcBuffer.sizeBytes = 512 * 1024; // room for one move's 3 x 128 KiB, not two
  assert.match(code(() => runMoves(twoPairs({ topology: t }))), /BAD_OPTION: these moves need 786432 bytes of relay slots/);
});
