/**
 * The fault campaign (issue "Proof of path and faults", item 3): 200 seeded mixes of frame loss,
 * corruption (dropped by the FCS), duplication and reordering on every cable, over small moves in
 * both modes, at full fidelity. Every move must complete verified: the bridges' reliable delivery
 * makes up for every fault. A failing seed prints the command that replays it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RngStream } from '../../src/core/rng.js';
import { runCopy } from '../../src/runtime/copy.js';
import { faultConnect, parseFault } from '../../src/runtime/faults.js';
import { loadTopology } from '../../src/topology/load.js';

const SEEDS = 200;

test(`${SEEDS} seeded fault mixes on every cable: every move completes verified, and the faults happened`, { timeout: 300_000 }, () => {
  const failures: string[] = [];
  const totals = { frames: 0, lost: 0, corrupted: 0, duplicated: 0, reordered: 0 };
  for (let seed = 1; seed <= SEEDS; seed++) {
    const r = new RngStream(seed);
    const pct = (max: number) => (Math.round(r.nextFloat() * max * 10) / 10).toString();
    const fault = `loss=${pct(4)}%,corrupt=${pct(1)}%,dup=${pct(3)}%,reorder=${pct(4)}%`;
    const via = seed % 2 === 0 ? 'host' : 'dc-buffer';
    const lengthBytes = (seed % 3 === 0 ? 384 : 256) * 1024;
    const replay = `dconnect copy sda sdb --length ${lengthBytes / 1024}KiB --via ${via} --seed ${seed} --fidelity full --fault ${fault}`;
    const t = loadTopology('paper-2012');
    const { connect, counts } = faultConnect(t, [parseFault(fault)], seed);
    try {
      const res = runCopy({ topology: t, src: 'sda', srcOffset: 0, dst: 'sdb', dstOffset: 0, lengthBytes, via, seed, fidelity: 'full', connect, sha256: false });
      if (!res.verified) failures.push(`not verified; replay: ${replay}`);
    } catch (e) {
      failures.push(`${(e as Error).message}; replay: ${replay}`);
    }
    for (const k of Object.keys(totals) as (keyof typeof totals)[]) totals[k] += counts[k];
  }
  assert.deepEqual(failures, []);
  for (const k of ['lost', 'corrupted', 'duplicated', 'reordered'] as const) assert.ok(totals[k] > 100, `${k}: ${totals[k]} of ${totals.frames} frames`);
});

test('--fault syntax: kinds, rates, one @LINK; errors name the problem', () => {
  assert.deepEqual(parseFault('loss=1%,dup=0.5%@host'), { rates: { loss: 0.01, corrupt: 0, dup: 0.005, reorder: 0 }, link: 'host' });
  assert.deepEqual(parseFault('reorder=0.02').rates.reorder, 0.02);
  assert.throws(() => parseFault('jitter=1%'), /no fault kind 'jitter'.*|kinds on a cable/);
  assert.throws(() => parseFault('loss=70%'), /loss rate 70% is outside 0\.\.50%/);
  assert.throws(() => parseFault('loss=1%@a@b'), /at most one @LINK/);
  assert.throws(() => faultConnect(loadTopology('paper-2012'), [parseFault('loss=1%@nowhere')], 1), /no link 'nowhere'/);
});

test('a media error at an LBA: the read completes with an NVMe error status and the move fails naming the failing range, in both modes', async () => {
  const { DconnectError } = await import('../../src/core/errors.js');
  const { parseMediaError } = await import('../../src/runtime/faults.js');
  const bad = parseMediaError('media-error=sda:1000')!;
  assert.deepEqual(bad, { device: 'sda', lba: 1000, op: 'read' });
  for (const via of ['dc-buffer', 'host'] as const) {
    assert.throws(
      () => runCopy({ topology: loadTopology('paper-2012'), src: 'sda', srcOffset: 0, dst: 'sdb', dstOffset: 0, lengthBytes: 1 << 20, via, seed: 1, mediaErrors: [bad] }),
      (e: unknown) => e instanceof DconnectError && e.code === 'DEVICE_ERROR' && /read of sda blocks 768\.\.1023 \(bytes 393216\.\.524287, chunk 3 of the move\) failed: .*UNRECOVERED_READ_ERROR/.test(e.message),
    );
  }
  // A block outside the moved range changes nothing.
  const r = runCopy({ topology: loadTopology('paper-2012'), src: 'sda', srcOffset: 0, dst: 'sdb', dstOffset: 0, lengthBytes: 1 << 20, via: 'dc-buffer', seed: 1, mediaErrors: [{ device: 'sda', lba: 5000 }] });
  assert.equal(r.verified, true);
  assert.throws(() => parseMediaError('media-error=sda'), /is not media-error=DEVICE:LBA/);
  assert.throws(() => parseMediaError('media-error=sda:7:erase'), /is not media-error=DEVICE:LBA\[:read\|:write\]/);
});

test('a media error on write: the write completes with Write Fault and the move fails naming the range, in both modes', async () => {
  const { DconnectError } = await import('../../src/core/errors.js');
  const { parseMediaError } = await import('../../src/runtime/faults.js');
  const bad = parseMediaError('media-error=sdb:1000:write')!;
  assert.deepEqual(bad, { device: 'sdb', lba: 1000, op: 'write' });
  for (const via of ['dc-buffer', 'host'] as const) {
    assert.throws(
      () => runCopy({ topology: loadTopology('paper-2012'), src: 'sda', srcOffset: 0, dst: 'sdb', dstOffset: 0, lengthBytes: 1 << 20, via, seed: 1, mediaErrors: [bad] }),
      (e: unknown) => e instanceof DconnectError && e.code === 'DEVICE_ERROR' && /write of sdb blocks 768\.\.1023 \(bytes 393216\.\.524287, chunk 3 of the move\) failed: .*WRITE_FAULT/.test(e.message),
    );
  }
  // Reads of that block are fine: it is bad for programming only.
  const r = runCopy({ topology: loadTopology('paper-2012'), src: 'sdb', srcOffset: 0, dst: 'sda', dstOffset: 0, lengthBytes: 1 << 20, via: 'dc-buffer', seed: 1, mediaErrors: [bad] });
  assert.equal(r.verified, true);
});
