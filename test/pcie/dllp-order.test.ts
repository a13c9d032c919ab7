/**
 * Per-TLP's rule for DLLPs on a busy wire: an UpdateFC sent at t goes out behind the TLPs handed
 * over before t, and ahead of those handed over after. At burst granularity a burst's constituents
 * are committed at its event, later than they were ready, so they can reach the wire after an
 * UpdateFC sent for a time later than theirs: they must still go first and push it (and the credits
 * it carries) back, as per-TLP's would.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VirtualScheduler } from '../../src/core/scheduler.js';
import { asBurst, constituent, splitParts } from '../../src/pcie/burst.js';
import { PcieLink, type FcCredits, type PciePort, type TlpReceiver } from '../../src/pcie/link.js';
import { Tlp } from '../../src/pcie/tlp.js';

const BIG: FcCredits = { postedHeaders: 1e6, postedDataBytes: 1e9, nonPostedHeaders: 1e6, completionHeaders: Infinity, completionDataBytes: Infinity };
/** The down end's receive buffer: four posted writes, so the fifth waits for an UpdateFC. */
const FOUR: FcCredits = { ...BIG, postedHeaders: 4, postedDataBytes: 4096 };

class Sink implements TlpReceiver {
  readonly arrivals: number[] = [];
  constructor(private readonly s: VirtualScheduler) {}
  receiveTlp(tlp: Tlp, port: PciePort): void {
    for (let i = 0; i < tlp.count; i++) this.arrivals.push(tlp.readyPs ? tlp.readyPs[i] : this.s.now());
    port.release(tlp);
  }
}

/**
 * Eight small writes go down (four credits: the fifth waits for the UpdateFC the down end sends up
 * when the first arrives, at about 0.45 us), while four long writes, ready before that UpdateFC, go
 * up: per TLP each at its ready time, at burst granularity as one burst handed over at 0.5 us (a
 * bridge's train, whose event comes at its last frame), after the UpdateFC was sent, before it landed.
 */
function run(burst: boolean) {
  const s = new VirtualScheduler();
  const link = new PcieLink('L', s, { generation: 1, lanes: 1, latencyNs: 100, mpsBytes: 1024, txQueueTlps: 32 }, BIG, FOUR);
  if (burst) link.up.burstBytes = link.down.burstBytes = 65536;
  const down = new Sink(s);
  const up = new Sink(s);
  link.down.attach(down);
  link.up.attach(up);
  for (let i = 0; i < 8; i++) assert.ok(link.up.send(Tlp.memWrite(1, 0x1000 + 64 * i, new Uint8Array(64).fill(i))));
  const ready = [100_000, 200_000, 300_000, 400_000];
  const long = asBurst(Tlp.memWrite(2, 0x10_0000, new Uint8Array(4096).fill(7)), splitParts(0x10_0000, 4096, (a, rest) => Math.min(1024, rest)));
  if (burst) {
    long.readyPs = Float64Array.from(ready);
    s.schedule(500_000, () => assert.ok(link.down.send(long)));
  } else {
    ready.forEach((t, i) => s.schedule(t, () => assert.ok(link.down.send(constituent(long, i)))));
  }
  s.run();
  return { down: down.arrivals, up: up.arrivals, dllps: link.upstream.snapshot().dllps };
}

test('burst granularity: an UpdateFC waits behind the TLPs handed over before it, even those committed after it, as per-TLP', () => {
  const a = run(false);
  const b = run(true);
  assert.equal(b.down.length, 8);
  assert.deepEqual(b.up, a.up, 'the long writes arrive when per-TLP has them');
  // The fifth small write waited for credits that came behind all four long writes (about 16 us of wire).
  assert.ok(a.down[4] > a.up[3], `per-TLP: the fifth small write (${a.down[4]} ps) after the long writes (${a.up[3]} ps)`);
  for (let i = 0; i < 8; i++) assert.ok(Math.abs(b.down[i] - a.down[i]) <= 100_000, `small write ${i}: ${b.down[i]} ps at burst, ${a.down[i]} ps per TLP`);
  assert.equal(b.dllps, a.dllps, 'the same DLLPs');
});
