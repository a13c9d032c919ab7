import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DconnectError } from '../../src/core/errors.js';
import { runCopy, runMoves } from '../../src/runtime/copy.js';
import { loadTopology } from '../../src/topology/load.js';
import { applySettings } from '../../src/topology/params.js';
import { runNicMove } from '../../src/runtime/nic-moves.js';
import { sweep } from '../../src/experiments/sweep.js';
import { parseSweepParam } from '../../src/experiments/sweep-params.js';

const MiB = 1 << 20;
const withCmb = (...more: string[]) => applySettings(loadTopology('paper-2012'), ['ssd.cmbSizeBytes=32MiB', 'host.lanes=1', ...more]).topology;

test('--via cmb: the source writes into the destination\'s CMB, the destination takes its data from it without a PCIe read; verified, and off the host link', () => {
  const len = 8 * MiB;
  const r = runCopy({ topology: withCmb(), src: 'sda', srcOffset: 0, dst: 'sdb', dstOffset: 0, lengthBytes: len, via: 'cmb', seed: 2, fidelity: 'full' });
  assert.equal(r.verified, true);
  assert.equal(r.relay, 'sdb CMB');
  assert.equal(r.mode, 'direct');
  const sda = r.trace['ssd.box0.slot0'];
  const sdb = r.trace['ssd.box0.slot1'];
  assert.equal(sdb.cmbPeerWriteBytes, len, 'every byte arrived in the CMB as the source\'s writes');
  assert.equal(sdb.cmbOwnReadBytes, len, 'and left it as the controller\'s own reads');
  assert.ok(sdb['dma.bytesRead'] < len / 100, `the destination DMA-read only commands and PRP lists (${sdb['dma.bytesRead']} B)`);
  assert.ok(sda['dma.bytesWritten'] >= len);
  assert.equal(r.trace['dcbuffer.box0.slot2'].ddrBusyPs, 0, 'the DC buffer is idle');
  assert.ok(r.hostLink.downstreamPayloadBytes + r.hostLink.upstreamPayloadBytes < len / 100);
  assert.ok(r.mbPerSec > 240, `${r.mbPerSec} MB/s: at the destination's write rate, as through the DC buffer`);
});

test('the fast fidelity holds for a CMB move: the destination\'s bytes and commands as full\'s, its time within the interval it states', () => {
  const req = { topology: withCmb('host.lanes=8'), src: 'sda', srcOffset: 0, dst: 'sdb', dstOffset: 0, lengthBytes: 24 * MiB, via: 'cmb' as const, seed: 3 };
  const fast = runCopy({ ...req, fidelity: 'fast' });
  const full = runCopy({ ...req, fidelity: 'full' });
  assert.equal(fast.sha256, full.sha256);
  assert.deepEqual(fast.commands, full.commands);
  assert.ok(fast.fidelity.detailedChunks < fast.fidelity.totalChunks, `it jumped: ${fast.fidelity.method}`);
  const off = Math.abs(fast.mbPerSec - full.mbPerSec) / full.mbPerSec;
  assert.ok(off <= Math.max(fast.fidelity.relativeError99, 1e-12), `fast ${fast.mbPerSec}, full ${full.mbPerSec}: ${off} beyond ±${fast.fidelity.relativeError99}`);
});

test('--via nearest: each move relays in its own destination\'s CMB, the nearest relay; the DC buffer stays the default', () => {
  const t = withCmb();
  t.boxes[0].slots = [0, 1, 2, 3].map((i) => ({ kind: 'ssd' as const, serial: `S${i}` })).concat([]) as typeof t.boxes[0]['slots'];
  t.boxes[0].slots.push({ kind: 'dc-buffer' });
  const pairs = [
    { src: 'sda', srcOffset: 0, dst: 'sdb', dstOffset: 0 },
    { src: 'sdd', srcOffset: 0, dst: 'sdc', dstOffset: 0 },
  ];
  const near = runMoves({ topology: t, pairs, lengthBytes: 4 * MiB, via: 'nearest', seed: 3 });
  assert.deepEqual(near.moves.map((m) => m.relay), ['sdb CMB', 'sdc CMB']);
  assert.equal(near.aggregate.verified, true);
  const dflt = runMoves({ topology: t, pairs, lengthBytes: 4 * MiB, via: 'dc-buffer', seed: 3 });
  assert.deepEqual(dflt.moves.map((m) => m.relay), ['dcbuf0', 'dcbuf0']);
});

test('the source\'s CMB when the destination has none: the source places its data in its own CMB, the destination reads it from there by MRd', () => {
  const len = 4 * MiB;
  const t = applySettings(loadTopology('paper-2012'), ['boxes.0.slots.0.ssd.cmbSizeBytes=1MiB']).topology;
  const r = runCopy({ topology: t, src: 'sda', srcOffset: 0, dst: 'sdb', dstOffset: 0, lengthBytes: len, via: 'cmb', seed: 5, fidelity: 'full' });
  assert.equal(r.verified, true);
  assert.equal(r.relay, 'sda CMB');
  const sda = r.trace['ssd.box0.slot0'];
  assert.equal(sda.cmbOwnWriteBytes, len, 'the read commands\' data went into the CMB without PCIe');
  assert.equal(sda.cmbPeerReadBytes, len, 'and left it as the destination\'s reads');
  assert.ok(sda['dma.bytesWritten'] < len / 100, `the source DMA-wrote only completions and interrupts (${sda['dma.bytesWritten']} B)`);
});

test('--via cmb on drives without a CMB is an error naming the --set that gives them one', () => {
  assert.throws(
    () => runCopy({ topology: loadTopology('paper-2012'), src: 'sda', srcOffset: 0, dst: 'sdb', dstOffset: 0, lengthBytes: MiB, via: 'cmb', seed: 1 }),
    (e: unknown) => e instanceof DconnectError && e.code === 'BAD_TOPOLOGY' && /ssd\.cmbSizeBytes/.test(e.hint ?? ''),
  );
});

test('relay slots must fit the CMB', () => {
  const t = applySettings(loadTopology('paper-2012'), ['ssd.cmbSizeBytes=256KiB']).topology;
  assert.throws(() => runCopy({ topology: t, src: 'sda', srcOffset: 0, dst: 'sdb', dstOffset: 0, lengthBytes: 4 * MiB, via: 'cmb', seed: 1 }), /262144-byte sdb CMB/);
});

test('--via cmb and nearest reach moves through a NIC and sweeps too: the relay the planner ranks first, data off the host link', async () => {
  const t = applySettings(loadTopology('paper-2012-nic'), ['ssd.cmbSizeBytes=32MiB']).topology;
  const serve = runNicMove({ topology: t, src: 'sda', dst: 'net:client0', lengthBytes: 4 * MiB, via: 'cmb', seed: 1 });
  assert.deepEqual([serve.relay, serve.mode, serve.verified], ['sda CMB', 'direct', true]);
  const ingest = runNicMove({ topology: t, src: 'net:client0', dst: 'sdb', lengthBytes: 4 * MiB, via: 'nearest', seed: 1 });
  assert.deepEqual([ingest.relay, ingest.mode, ingest.verified], ['sdb CMB', 'direct', true]);
  // The host link carries the NIC's descriptors and frame headers (about 8% of the bytes, as through a DC buffer), not the data.
  for (const r of [serve, ingest]) assert.ok(r.hostLink.upstreamPayloadBytes + r.hostLink.downstreamPayloadBytes < 0.1 * r.bytes, `${r.kind}: the data off the host link`);
  const s = await sweep({ topology: withCmb(), params: [parseSweepParam(withCmb(), 'host.lanes=1,8')], via: 'cmb', sizeBytes: 8 * MiB, seed: 1, metric: 'mbPerSec', threads: 1 });
  assert.equal(s.rows.length, 2);
  assert.ok(s.rows.every((row) => row.value > 200), 'both points run through the CMB at the flash rate');
});
