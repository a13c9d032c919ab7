/**
 * Issue 18's property: on a random chain of PCIe links that one write flow has to itself (random
 * generations, widths, latencies, MPS, address and length; credits and queues that never bind), a
 * DMA write sent as one burst delivers its last byte at exactly the time the same write sent as
 * per-TLP TLPs does, with the same TLPs, payload and wire bytes on every link.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { VirtualScheduler } from '../../src/core/scheduler.js';
import { asBurst, constituent, splitParts } from '../../src/pcie/burst.js';
import { PcieLink, type FcCredits, type PciePort, type TlpReceiver } from '../../src/pcie/link.js';
import type { PcieGeneration, PcieLanes } from '../../src/pcie/link-params.js';
import { Tlp } from '../../src/pcie/tlp.js';

const BIG: FcCredits = { postedHeaders: 1e6, postedDataBytes: 1e9, nonPostedHeaders: 1e6, completionHeaders: Infinity, completionDataBytes: Infinity };

interface Hop {
  gen: PcieGeneration;
  lanes: PcieLanes;
  latencyNs: number;
}

/** Passes what arrives on one link on to the next (a switch with no latency of its own), or records it at the end. */
class Relay implements TlpReceiver {
  lastArrivalPs = -1;
  tlps = 0;
  constructor(
    private readonly s: VirtualScheduler,
    private readonly next: PciePort | null,
  ) {}
  receiveTlp(tlp: Tlp, port: PciePort): void {
    if (this.next) assert.ok(this.next.send(tlp), 'the next link took it');
    else {
      // A burst's constituents arrived at its ready times; a TLP now.
      const at = tlp.readyPs ? tlp.readyPs[tlp.readyPs.length - 1] : this.s.now();
      if (at > this.lastArrivalPs) this.lastArrivalPs = at;
      this.tlps += tlp.count;
    }
    port.release(tlp);
  }
}

function run(hops: Hop[], mps: number, address: number, bytes: number, burst: boolean) {
  const s = new VirtualScheduler();
  const links = hops.map((h, i) => new PcieLink(`L${i}`, s, { generation: h.gen, lanes: h.lanes, latencyNs: h.latencyNs, mpsBytes: mps, txQueueTlps: 1 << 20 }, BIG, BIG));
  const end = new Relay(s, null);
  links.forEach((l, i) => l.down.attach(i + 1 < links.length ? new Relay(s, links[i + 1].up) : end));
  const data = new Uint8Array(bytes);
  const w = asBurst(Tlp.memWrite(1, address, data), splitParts(address, bytes, (a, rest) => Math.min(mps, rest, 4096 - (a % 4096))));
  if (burst) links[0].up.send(w);
  else for (let i = 0; i < w.count; i++) links[0].up.send(constituent(w, i));
  s.run();
  return { last: end.lastArrivalPs, tlps: end.tlps, counters: links.map((l) => ({ ...l.downstream.snapshot() })) };
}

const hop = fc.record({
  gen: fc.constantFrom<PcieGeneration>(1, 2, 3, 4, 5),
  lanes: fc.constantFrom<PcieLanes>(1, 2, 4, 8, 16),
  latencyNs: fc.integer({ min: 0, max: 1000 }),
});

test('a write flow alone on a random chain of links: a burst delivers its last byte at exactly the per-TLP time', () => {
  fc.assert(
    fc.property(
      fc.array(hop, { minLength: 1, maxLength: 5 }),
      fc.constantFrom(128, 256, 512, 1024),
      fc.oneof(fc.integer({ min: 0, max: 1 << 20 }), fc.integer({ min: 0x1_0000_0000 - 8192, max: 0x1_0000_0000 + 8192 })),
      fc.integer({ min: 1, max: 16384 }),
      (hops, mps, dw, dws) => {
        const address = dw * 4;
        const bytes = dws * 4;
        const a = run(hops, mps, address, bytes, false);
        const b = run(hops, mps, address, bytes, true);
        assert.equal(b.tlps, a.tlps);
        assert.equal(b.last, a.last, `last byte at ${b.last} ps, per-TLP ${a.last} ps`);
        for (let i = 0; i < hops.length; i++) {
          for (const f of ['tlps', 'payloadBytes', 'wireBytes', 'MWr', 'busyPs'] as const) assert.equal(b.counters[i][f], a.counters[i][f], `L${i}.${f}`);
        }
      },
    ),
    { numRuns: 200, seed: 18 },
  );
});
