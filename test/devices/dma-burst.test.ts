/**
 * A DMA engine at burst granularity hands a write over as per-TLP's does (issue 18): as far as the
 * transmit queue takes it, the rest as places free. So the write finishes when per-TLP's would, and
 * what the device queues next (a completion entry) goes behind the data per-TLP's engine had queued
 * (handed over at once, a command's completion entry overtook the next command's data).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DmaEngine } from '../../src/devices/dma-engine.js';
import { PcieBench } from '../helpers/pcie-bench.js';

const MiB = 1 << 20;

function run(burstBytes: number) {
  // Tight credits and queue, withheld until 5 us: the engine must wait for places.
  const bench = new PcieBench({ upCredits: { postedHeaders: 4, postedDataBytes: 512, nonPostedHeaders: 4, completionHeaders: Infinity, completionDataBytes: Infinity }, txQueueTlps: 4 });
  bench.port.burstBytes = burstBytes;
  bench.hold = true;
  const dma = new DmaEngine(bench.port, () => 0x100, { mpsBytes: 128, mrrsBytes: 512, maxReadTags: 8 }, bench.s);
  bench.port.attach({ receiveTlp: () => {}, portReady: () => dma.pump() });
  let doneAt = -1;
  dma.write(MiB, new Uint8Array(4096).fill(1), () => {
    doneAt = bench.s.now();
    dma.write(2 * MiB, new Uint8Array(16).fill(3)); // the completion entry
  });
  bench.s.schedule(1_000_000, () => dma.write(3 * MiB, new Uint8Array(4096).fill(2))); // the next command's data, 1 us later
  bench.s.schedule(5_000_000, () => bench.releaseHeld());
  bench.run();
  // Arrival order of what reached the root port, per write (bursts count their constituents).
  const order: string[] = [];
  for (const { tlp } of bench.got) {
    const which = tlp.address >= 3 * MiB ? 'B' : tlp.address >= 2 * MiB ? 'C' : 'A';
    for (let i = 0; i < tlp.count; i++) order.push(which);
  }
  return { doneAt, order };
}

test('a DMA write burst is handed over as per-TLP would: it finishes when per-TLP\'s does, and what follows queues behind the same data', () => {
  const tlp = run(0);
  const burst = run(16384);
  assert.equal(tlp.order.filter((x) => x === 'A').length, 32);
  assert.deepEqual(burst.order, tlp.order, 'same order of writes at the root port');
  assert.ok(tlp.order.lastIndexOf('B') < tlp.order.indexOf('C'), 'per TLP, the completion entry follows the next command\'s data');
  // Credits come back per burst rather than per TLP (the ledger times them), so the last places free
  // at slightly different times; handed over at once, the write would finish at 0.
  assert.ok(tlp.doneAt > 5_000_000 && Math.abs(burst.doneAt - tlp.doneAt) <= 0.1 * tlp.doneAt, `finishes at ${burst.doneAt} ps against per-TLP's ${tlp.doneAt}`);
});
