import type { DcBufferDevice } from '../../src/host/dc/manager.js';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { VirtualScheduler } from '../../src/core/scheduler.js';
import { isSuccess, type NvmeStatus } from '../../src/devices/nvme/nvme-defs.js';
import { DcBuffer } from '../../src/devices/dc-buffer.js';
import { NvmeSsd } from '../../src/devices/nvme-ssd.js';
import { expectedPattern } from '../../src/devices/sparse-memory.js';
import { Frame } from '../../src/ethernet/frame.js';
import { CableChannel, EthPort, type EthPortParams } from '../../src/ethernet/port.js';
import { wireBytes } from '../../src/ethernet/frame.js';
import { EXPETHER_HEADER_BYTES } from '../../src/expether/pdu.js';
import { encodedLength } from '../../src/pcie/tlp-codec.js';
import type { BridgeParams } from '../../src/expether/bridge.js';
import { IoSideBridge } from '../../src/expether/io-bridge.js';
import { EXPETHER_ETHERTYPE, ExpEtherPdu } from '../../src/expether/pdu.js';
import { RngStream } from '../../src/core/rng.js';
import { ReliableReceiver, ReliableSender } from '../../src/expether/reliable.js';
import { PcieLink, type FcCredits, type PciePort, type TlpReceiver } from '../../src/pcie/link.js';
import { Tlp } from '../../src/pcie/tlp.js';
import { asBurst } from '../../src/pcie/burst.js';
import { boot } from '../../src/runtime/boot.js';
import { buildFabric } from '../../src/topology/builder.js';
import { loadTopology } from '../../src/topology/load.js';

function pdu(): ExpEtherPdu {
  return new ExpEtherPdu('tlp', -1, -1, Tlp.memWrite(1, 0, new Uint8Array(4)), null);
}

describe('ReliableSender', () => {
  it('assigns consecutive sequence numbers and keeps at most windowFrames unacknowledged', () => {
    const s = new ReliableSender(4);
    const sent: ExpEtherPdu[] = [];
    for (let i = 0; i < 4; i++) {
      assert.equal(s.canSend(), true);
      const p = pdu();
      s.track(p, 1000 * i);
      sent.push(p);
    }
    assert.deepEqual(
      sent.map((p) => p.seq),
      [0, 1, 2, 3],
    );
    assert.equal(s.inFlight(), 4);
    assert.equal(s.canSend(), false);
    assert.throws(() => s.track(pdu(), 5000), /window full/);
    assert.equal(s.inFlight(), 4);
  });

  it('acknowledgements are cumulative and reopen the window', () => {
    const s = new ReliableSender(4);
    for (let i = 0; i < 4; i++) s.track(pdu(), 10 * i);
    assert.equal(s.acknowledge(-1), 0);
    assert.equal(s.acknowledge(1), 2, 'ack 1 covers seq 0 and 1');
    assert.equal(s.inFlight(), 2);
    assert.equal(s.oldestSentPs(), 20);
    assert.equal(s.acknowledge(0), 0, 'an old ACK releases nothing');
    assert.equal(s.acknowledge(1), 0, 'a repeated ACK releases nothing');
    assert.equal(s.canSend(), true);
    const p = pdu();
    s.track(p, 99);
    assert.equal(p.seq, 4);
    assert.equal(s.acknowledge(10), 3, 'an ACK beyond what was sent releases everything');
    assert.equal(s.inFlight(), 0);
    assert.equal(s.oldestSentPs(), -1);
  });

  it('selective repeat: a NAK takes exactly the unacknowledged PDUs it names, and restamps only them', () => {
    const s = new ReliableSender(8);
    const all: ExpEtherPdu[] = [];
    for (let i = 0; i < 6; i++) {
      const p = pdu();
      s.track(p, 100 + i);
      all.push(p);
    }
    s.acknowledge(1);
    assert.deepEqual(s.takeNaked({ first: 3, last: 4 }, 5000), all.slice(3, 5));
    assert.equal(s.retransmissions, 2);
    assert.equal(s.oldestSentPs(), 102, 'seq 2 was not resent: it is now the oldest');
    assert.deepEqual(s.takeNaked({ first: 0, last: 2 }, 5001), [all[2]], 'acknowledged frames are not resent');
    assert.deepEqual(s.takeNaked({ first: 6, last: 9 }, 5002), [], 'nor frames never sent');
    assert.equal(s.inFlight(), 4, 'resending releases nothing');
  });

  it("a NAK at or before the frame being timed cancels its round-trip measurement (its ACK would time the repair); one after it does not", () => {
    const s = new ReliableSender(8);
    for (let i = 0; i < 6; i++) s.track(pdu(), i);
    s.timedSeq = 4;
    s.takeNaked({ first: 5, last: 5 }, 10);
    assert.equal(s.timedSeq, 4, 'a gap after the timed frame does not hold its ACK');
    s.takeNaked({ first: 2, last: 3 }, 11);
    assert.equal(s.timedSeq, -1, 'a gap before it does');
  });

  it('live: with a stamp source, every send and resend is stamped, and the first unacknowledged frame\'s stamp is its last send', () => {
    let wall = 100;
    const s = new ReliableSender(8);
    assert.equal(s.firstSentStamp(), undefined, 'virtual time: no stamps');
    s.stampWith(() => wall);
    assert.equal(s.firstSentStamp(), undefined, 'nothing sent');
    s.track(pdu(), 0);
    wall = 105;
    s.track(pdu(), 1);
    assert.equal(s.firstSentStamp(), 100);
    wall = 120;
    s.takeFirst(2);
    assert.equal(s.firstSentStamp(), 120, 'a resend restamps it');
    s.acknowledge(0);
    assert.equal(s.firstSentStamp(), 105);
  });

  it('the timer backstop takes only PDUs last sent at or before the cutoff', () => {
    const s = new ReliableSender(8);
    const all: ExpEtherPdu[] = [];
    for (let i = 0; i < 5; i++) {
      const p = pdu();
      s.track(p, 100 * i);
      all.push(p);
    }
    s.takeNaked({ first: 1, last: 1 }, 1000);
    assert.deepEqual(s.takeOlderThan(300, 2000), [all[0], all[2], all[3]], 'seq 1 was resent at 1000, seq 4 sent at 400');
    assert.equal(s.oldestSentPs(), 400);
    assert.equal(s.retransmissions, 4);
  });

  it('property: matches a simple model over long runs (including internal compaction)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 64 }),
        fc.array(fc.oneof(fc.record({ op: fc.constant('send' as const), n: fc.integer({ min: 1, max: 80 }) }), fc.record({ op: fc.constant('ack' as const), back: fc.integer({ min: 0, max: 70 }) }), fc.record({ op: fc.constant('rtx' as const) }), fc.record({ op: fc.constant('nak' as const), first: fc.integer({ min: 0, max: 300 }), n: fc.integer({ min: 1, max: 20 }) })), {
          maxLength: 200,
        }),
        (window, ops) => {
          const s = new ReliableSender(window);
          let next = 0;
          let acked = -1; // model: highest cumulative ack
          let now = 0;
          for (const o of ops) {
            now += 10;
            if (o.op === 'send') {
              for (let i = 0; i < o.n && s.canSend(); i++) {
                const p = pdu();
                s.track(p, now);
                assert.equal(p.seq, next++);
              }
              assert.ok(s.inFlight() <= window);
            } else if (o.op === 'ack') {
              const ack = Math.max(-1, next - 1 - o.back);
              const expectReleased = Math.max(0, ack - acked);
              assert.equal(s.acknowledge(ack), expectReleased);
              acked = Math.max(acked, ack);
            } else if (o.op === 'rtx') {
              const r = s.takeOlderThan(now, now);
              assert.deepEqual(
                r.map((p) => p.seq),
                Array.from({ length: next - 1 - acked }, (_, i) => acked + 1 + i),
              );
            } else {
              const last = o.first + o.n - 1;
              const r = s.takeNaked({ first: o.first, last }, now);
              const lo = Math.max(acked + 1, o.first);
              const hi = Math.min(next - 1, last);
              assert.deepEqual(
                r.map((p) => p.seq),
                Array.from({ length: Math.max(0, hi - lo + 1) }, (_, i) => lo + i),
              );
            }
            assert.equal(s.inFlight(), next - 1 - acked);
            assert.equal(s.canSend(), s.inFlight() < window);
          }
        },
      ),
      { seed: 7, numRuns: 150 },
    );
  });

  it('stays correct after more than 1024 frames were acknowledged (compaction)', () => {
    const s = new ReliableSender(3000);
    for (let i = 0; i < 2500; i++) s.track(pdu(), i);
    assert.equal(s.acknowledge(1999), 2000);
    assert.equal(s.inFlight(), 500);
    assert.equal(s.oldestSentPs(), 2000);
    const r = s.takeOlderThan(9999, 9999);
    assert.equal(r.length, 500);
    assert.equal(r[0].seq, 2000);
    assert.equal(r[499].seq, 2499);
    assert.equal(s.oldestSentPs(), 9999);
  });
});

describe('ReliableReceiver', () => {
  const at = (seq: number) => Object.assign(pdu(), { seq });

  it('classifies: next, duplicate (below expected or already held), held (within the window), beyond', () => {
    const r = new ReliableReceiver(4);
    assert.equal(r.cumulativeAck(), -1, 'nothing acknowledged yet');
    assert.equal(r.classify(0), 'next');
    assert.equal(r.classify(1), 'held');
    assert.equal(r.classify(3), 'held');
    assert.equal(r.classify(4), 'beyond', 'a sender never has more than the window beyond the last ACK');
    r.acceptNext(0);
    assert.equal(r.classify(0), 'duplicate');
    assert.equal(r.classify(1), 'next');
    r.hold(at(3), 0);
    assert.equal(r.classify(3), 'duplicate', 'a held frame arriving again');
  });

  it('a gap gets a NAK naming exactly the missing range, once; frames landing inside it reveal nothing new', () => {
    const r = new ReliableReceiver(16);
    r.acceptNext(0); // seq 0
    assert.deepEqual(r.hold(at(4), 10), { first: 1, last: 3 });
    assert.deepEqual(r.nakGaps(10), [{ first: 1, last: 3 }]);
    assert.deepEqual(r.nakGaps(10), [], 'NAKed once');
    assert.equal(r.hold(at(5), 11), null, 'adjacent to the highest held: no new gap');
    assert.deepEqual(r.hold(at(9), 12), { first: 6, last: 8 });
    assert.deepEqual(r.nakGaps(12), [{ first: 6, last: 8 }], 'only the new gap');
    assert.equal(r.hold(at(2), 13), null, 'inside a gap already NAKed');
    assert.deepEqual(r.nakGaps(13), [], 'a frame inside a NAKed gap splits nothing to NAK again');
    assert.equal(r.heldCount, 4);
    assert.equal(r.takeHeld(), null, 'seq 1 is still missing');
    r.acceptNext(20); // seq 1 arrives: 2 follows from the reorder buffer, then 3 is missing
    assert.equal(r.takeHeld()!.seq, 2);
    r.acceptNext(20);
    assert.equal(r.takeHeld(), null);
    assert.equal(r.expected, 3);
    // Repeats: each missing frame NAKed at or before the cutoff, as ranges; later stamps wait.
    const due = r.dueNaks(10, 30);
    assert.deepEqual(due.ranges, [{ first: 3, last: 3 }], '6..8 were NAKed at 12, after the cutoff');
    assert.equal(due.nextAtPs, 12);
    assert.deepEqual(r.dueNaks(30, 31).ranges, [{ first: 3, last: 3 }, { first: 6, last: 8 }]);
  });

  it('a frame overtaken by its neighbour in the same instant fills its gap before the check: no NAK', () => {
    const r = new ReliableReceiver(16);
    r.acceptNext(0); // seq 0
    assert.deepEqual(r.hold(at(2), 10), { first: 1, last: 1 }, 'seq 2 arrives first');
    r.acceptNext(10); // then seq 1, in the same delivery
    assert.equal(r.takeHeld()!.seq, 2);
    r.acceptNext(10);
    assert.deepEqual(r.nakGaps(10), [], 'nothing is missing by the end of the instant');
    assert.equal(r.nakRepeatPs(5), 5, 'and nothing was timed as a repair');
  });

  it('a burst ahead of a gap waits whole: its frames count as held, and it comes back once, as the burst, when the gap fills', () => {
    const r = new ReliableReceiver(16);
    const burst = Object.assign(new ExpEtherPdu('tlp', -1, -1, asBurst(Tlp.memWrite(1, 0, new Uint8Array(16)), Uint16Array.of(4, 4, 4, 4)), null), { seq: 3 });
    r.acceptNext(0); // seq 0
    assert.equal(r.canHoldBurst(1, 4), false, 'seq 1 is next: not held');
    assert.equal(r.canHoldBurst(14, 4), false, 'beyond the window');
    assert.equal(r.canHoldBurst(3, 4), true);
    assert.equal(r.holdBurst(burst, 4, 10), true, 'seqs 1..2 missing: a gap');
    assert.equal(r.heldCount, 4);
    assert.equal(r.classify(5), 'duplicate', 'each of its frames is held');
    assert.equal(r.canHoldBurst(5, 2), false, 'overlaps what is held');
    assert.deepEqual(r.nakGaps(10), [{ first: 1, last: 2 }]);
    r.acceptNext(20); // seq 1
    assert.equal(r.takeHeld(), null, 'seq 2 still missing');
    r.acceptNext(21); // seq 2
    assert.equal(r.takeHeld(), burst, 'the burst, once');
    assert.equal(r.heldCount, 0);
    for (let i = 0; i < 4; i++) r.acceptNext(21);
    assert.equal(r.expected, 7);
    assert.equal(r.takeHeld(), null);
  });

  it('measures the repair time of first NAKs only (Karn), and sizes the repeat as RFC 6298 does', () => {
    const r = new ReliableReceiver(16);
    assert.equal(r.nakRepeatPs(777), 777, 'before any repair: the initial value');
    r.hold(at(2), 100);
    r.nakGaps(100); // NAK 0..1 at 100
    r.acceptNext(140); // seq 0 repaired after 40
    assert.equal(r.nakRepeatPs(777), 40 + 4 * 20);
    r.dueNaks(1000, 1000); // seq 1 NAKed again
    r.acceptNext(1010);
    assert.equal(r.repairSrttPs, 40, 'a repeated NAK measures nothing');
  });

  it('live: times a first NAK in wall time too, handing its stamp back when the frame arrives; a repeated NAK measures nothing', () => {
    const r = new ReliableReceiver(16);
    let wall = 1000;
    const samples: number[] = [];
    r.wallRepairs = { stamp: () => wall, repaired: (stamp) => samples.push(wall - stamp) };
    r.hold(at(3), 100);
    r.nakGaps(100); // NAK 0..2 at wall 1000
    wall = 1002.5;
    r.acceptNext(140); // seq 0: repaired after 2.5 wall ms
    assert.deepEqual(samples, [2.5]);
    r.dueNaks(1000, 1000); // seq 1 and 2 NAKed again
    wall = 1010;
    r.acceptNext(1010);
    r.acceptNext(1011);
    assert.deepEqual(samples, [2.5], 'repeated NAKs give no sample');
  });

  it('property: over a lossy, reordering, duplicating channel the reorder buffer stays below the window and every frame is delivered once, in order', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 32 }), fc.integer({ min: 1, max: 1e9 }), (window, seed) => {
        const rng = new RngStream(seed);
        const s = new ReliableSender(window);
        const r = new ReliableReceiver(window);
        const wire: ExpEtherPdu[] = [];
        const out: number[] = [];
        const N = 300;
        let made = 0;
        for (let now = 0; out.length < N; now++) {
          assert.ok(now < 1e5, 'no progress');
          while (made < N && s.canSend()) {
            const p = pdu();
            s.track(p, now);
            made++;
            wire.push(p);
          }
          // Deliver one frame from a random place in the wire (reordering); lose or duplicate some.
          if (wire.length > 0) {
            const i = Math.floor(rng.nextFloat() * Math.min(wire.length, 3));
            const p = wire[i];
            if (rng.nextFloat() >= 0.05) wire.splice(i, 1);
            if (rng.nextFloat() >= 0.1) {
              const cls = r.classify(p.seq);
              assert.notEqual(cls, 'beyond');
              if (cls === 'held') {
                if (r.hold(p, now)) for (const g of r.nakGaps(now)) wire.push(...s.takeNaked(g, now));
              } else if (cls === 'next') {
                r.acceptNext(now);
                out.push(p.seq);
                for (let h = r.takeHeld(); h; h = r.takeHeld()) {
                  r.acceptNext(now);
                  out.push(h.seq);
                }
                r.delivered = r.expected - 1;
                s.acknowledge(r.delivered);
              }
            }
            assert.ok(r.heldCount < window, `reorder buffer ${r.heldCount} of window ${window}`);
          }
          // Backstops: NAK repeats and the retransmission timer.
          if (now % 50 === 49) {
            for (const g of r.dueNaks(now - 50, now).ranges) wire.push(...s.takeNaked(g, now));
            wire.push(...s.takeOlderThan(now - 100, now));
          }
        }
        assert.deepEqual(out, Array.from({ length: N }, (_, i) => i));
      }),
      { seed: 11, numRuns: 60 },
    );
  });
});

// ---- Two bridges back to back ------------------------------------------------------------------

const CREDITS: FcCredits = { postedHeaders: 8, postedDataBytes: 4096, nonPostedHeaders: 8, completionHeaders: 8, completionDataBytes: 4096 };
const ENDPOINT: FcCredits = { ...CREDITS, completionHeaders: Infinity, completionDataBytes: Infinity };

/** A PCIe device on a link's down port that can stream MWr (with back-pressure) and record what it gets. */
class Device implements TlpReceiver {
  readonly got: Tlp[] = [];
  readonly held: Tlp[] = [];
  hold = false;
  private readonly out: Tlp[] = [];
  constructor(readonly port: PciePort) {
    port.attach(this);
  }
  receiveTlp(tlp: Tlp, port: PciePort): void {
    this.got.push(tlp);
    if (this.hold) this.held.push(tlp);
    else port.release(tlp);
  }
  send(tlp: Tlp): void {
    this.out.push(tlp);
    this.portReady();
  }
  portReady(): void {
    while (this.out.length > 0 && this.port.send(this.out[0])) this.out.shift();
  }
  releaseAll(): void {
    this.hold = false;
    for (const t of this.held.splice(0)) this.port.release(t);
  }
}

function twoBridges(params: Partial<BridgeParams> = {}, portA: Partial<EthPortParams> = {}) {
  const s = new VirtualScheduler();
  const bp: BridgeParams = { bridgeLatencyNs: 800, windowFrames: 8, retransmitTimeoutNs: 20_000, ackEveryFrames: 4, ackDelayNs: 2000, ...params };
  const eth = { rateBitsPerSec: 10e9, queueLimitBytes: 1 << 20 };
  const ea = new EthPort('a', s, { ...eth, ...portA });
  const eb = new EthPort('b', s, eth);
  const cable = new CableChannel(ea, eb, 25);
  const linkParams = { generation: 1 as const, lanes: 8 as const, latencyNs: 100, mpsBytes: 128, txQueueTlps: 4 };
  const la = new PcieLink('la', s, linkParams, CREDITS, ENDPOINT);
  const lb = new PcieLink('lb', s, linkParams, CREDITS, ENDPOINT);
  const MAC_A = 0xa;
  const MAC_B = 0xb;
  // Each bridge's "host" peer is the other one, so a device's memory writes cross the cable.
  const a = new IoSideBridge('A', s, MAC_A, 1, bp, ea, la.up, MAC_B, { generation: 1, lanes: 8 });
  const b = new IoSideBridge('B', s, MAC_B, 1, bp, eb, lb.up, MAC_A, { generation: 1, lanes: 8 });
  const devA = new Device(la.down);
  const devB = new Device(lb.down);
  return { s, a, b, devA, devB, cable, bp };
}

function payload(i: number): Uint8Array {
  const d = new Uint8Array(128);
  for (let k = 0; k < d.length; k++) d[k] = (i * 7 + k) & 0xff;
  return d;
}

function assertAllInOrder(got: Tlp[], n: number): void {
  assert.equal(got.length, n, `expected ${n} TLPs exactly once, got ${got.length}`);
  got.forEach((t, i) => {
    assert.equal(t.kind, 'MWr');
    assert.equal(t.address, 0x10000 + 128 * i, `TLP ${i} out of order`);
    assert.deepEqual(t.data, payload(i));
  });
}

describe('ExpEther bridges: reliable delivery between two bridges', () => {
  const N = 200;
  const stream = (devA: Device) => {
    for (let i = 0; i < N; i++) devA.send(Tlp.memWrite(0x100, 0x10000 + 128 * i, payload(i)));
  };

  it('without loss: every TLP arrives once, in order, with no retransmission', () => {
    const { s, a, b, devA, devB, cable } = twoBridges();
    stream(devA);
    s.run({ maxEvents: 1e6 });
    assertAllInOrder(devB.got, N);
    assert.equal(a.counters.tlpsToEthernet, N);
    assert.equal(b.counters.tlpsFromEthernet, N);
    assert.equal(a.counters.retransmittedFrames, 0);
    assert.equal(b.counters.outOfOrderFrames, 0);
    assert.equal(b.counters.heldOutOfOrder, 0);
    assert.equal(b.counters.naksSent, 0);
    assert.equal(b.counters.duplicateFrames, 0);
    assert.equal(cable.lostFrames, 0);
    assert.ok(b.counters.acksSent >= N / 4 - 1, 'the receiver ACKs at least every ackEveryFrames');
  });

  it('a TLP that finds the output buffer full of ACKs, with nothing in flight, goes once the buffer drains (no ACK is coming to wake it)', () => {
    // A's port is slow and holds one data frame: while B streams to A, A's own ACKs fill it.
    const one = wireBytes(EXPETHER_HEADER_BYTES + encodedLength(Tlp.memWrite(0x100, 0x10000, payload(0))));
    const { s, a, devA, devB } = twoBridges({}, { rateBitsPerSec: 1e8, queueLimitBytes: one + 40 });
    for (let i = 0; i < N; i++) devB.send(Tlp.memWrite(0x100, 0x10000 + 128 * i, payload(i)));
    // A's device writes once, when A is ACKing and has sent nothing: its window is empty.
    s.schedule(30_000_000, () => {
      assert.ok(a.eth.queuedBytes(800_000) > 40, 'the port holds ACKs');
      devA.send(Tlp.memWrite(0x100, 0x10000, payload(0)));
    });
    s.run({ maxEvents: 1e6 });
    assertAllInOrder(devA.got, N);
    assertAllInOrder(devB.got, 1);
  });

  it('the sender never has more than windowFrames unacknowledged frames', () => {
    const { s, devA, cable, bp } = twoBridges({ windowFrames: 5 });
    let ackSeen = -1;
    let maxAhead = -Infinity;
    cable.dropFilter = (f: Frame) => {
      const p = f.payload as ExpEtherPdu;
      if (f.src === 0xb && p.ack > ackSeen) ackSeen = p.ack;
      if (f.src === 0xa && p.kind === 'tlp') maxAhead = Math.max(maxAhead, p.seq - ackSeen);
      return false;
    };
    stream(devA);
    s.run({ maxEvents: 1e6 });
    assert.ok(maxAhead <= bp.windowFrames!, `sent seq ${maxAhead} beyond the last ACK`);
    assert.equal(maxAhead, 5, 'and the window is actually used');
  });

  /** Watches the cable: data frames by seq (a second sighting is a resend) and NAKs by sender. */
  function watch(cable: CableChannel, drop: (p: ExpEtherPdu, dataIndex: number) => boolean) {
    const seen = new Set<number>();
    const resent: number[] = [];
    const lost: number[] = [];
    const naks: { first: number; last: number }[] = [];
    let dataFrames = 0;
    cable.dropFilter = (f: Frame) => {
      const p = f.payload as ExpEtherPdu;
      if (p.kind === 'nak') naks.push({ ...p.nak! });
      if (p.kind === 'tlp' && f.src === 0xa) {
        if (seen.has(p.seq)) resent.push(p.seq);
        seen.add(p.seq);
      }
      const idx = p.kind === 'tlp' && f.src === 0xa ? ++dataFrames : -1;
      if (drop(p, idx)) {
        if (p.kind === 'tlp') lost.push(p.seq);
        return true;
      }
      return false;
    };
    return { resent, lost, naks };
  }

  it('selective repeat: each lost data frame gets a NAK naming exactly it, and only NAKed frames are resent, before any timeout', () => {
    const { s, a, b, devA, devB, cable, bp } = twoBridges();
    const w = watch(cable, (_p, i) => i === 5 || i === 17 || i === 60);
    stream(devA);
    s.run({ maxEvents: 1e6 });
    assertAllInOrder(devB.got, N);
    assert.equal(w.lost.length, 3);
    assert.deepEqual(
      w.naks,
      w.lost.map((seq) => ({ first: seq, last: seq })),
    );
    assert.deepEqual(w.resent, w.lost, 'only the NAKed frames, once each');
    assert.equal(a.counters.retransmittedFrames, 3);
    assert.equal(b.counters.naksSent, 3);
    assert.equal(a.counters.naksReceived, 3);
    assert.ok(b.counters.heldOutOfOrder > 0, 'frames after each gap waited in the reorder buffer');
    assert.equal(b.counters.duplicateFrames, 0);
    assert.equal(a.counters.tlpsToEthernet, N, 'retransmissions are not new TLPs');
    assert.equal(a.counters.framesSent, N + a.counters.retransmittedFrames);
    void bp;
  });

  it('a frame overtaken by its neighbour within one instant (a live datagram) costs no NAK and no resend; overtaken across instants, it is NAKed', () => {
    for (const laterPs of [0, 1_000_000]) {
      const { s, a, b, devA, devB } = twoBridges();
      const deliver = b.receiveFrame.bind(b);
      let held: Frame | null = null;
      let swapped = false;
      b.receiveFrame = (f: Frame) => {
        const p = f.payload as ExpEtherPdu;
        if (!swapped && p.kind === 'tlp' && p.seq === 5) {
          swapped = true;
          held = f;
          return;
        }
        deliver(f);
        if (held && p.kind === 'tlp' && p.seq === 6) {
          const h: Frame = held;
          held = null;
          if (laterPs === 0) deliver(h);
          else s.schedule(laterPs, () => deliver(h));
        }
      };
      stream(devA);
      s.run({ maxEvents: 1e6 });
      assertAllInOrder(devB.got, N);
      if (laterPs === 0) {
        assert.equal(b.counters.heldOutOfOrder, 1, 'seq 6 waited for seq 5');
        assert.equal(b.counters.naksSent, 0, 'the gap filled within the instant');
        assert.equal(a.counters.retransmittedFrames, 0);
        assert.equal(b.counters.duplicateFrames, 0);
      } else {
        assert.equal(b.counters.naksSent, 1, 'the gap stood past its instant');
        assert.equal(a.counters.retransmittedFrames, 1);
      }
    }
  });

  it('a run of lost frames is one NAK naming the whole range', () => {
    const { s, b, devA, devB, cable } = twoBridges();
    const w = watch(cable, (_p, i) => i >= 10 && i <= 13);
    stream(devA);
    s.run({ maxEvents: 1e6 });
    assertAllInOrder(devB.got, N);
    assert.deepEqual(w.naks, [{ first: 9, last: 12 }]);
    assert.deepEqual(w.resent, [9, 10, 11, 12]);
    assert.equal(b.counters.naksSent, 1);
  });

  it('duplicates of frames in the reorder buffer are counted and dropped', () => {
    const { s, a, b, devA, devB, cable } = twoBridges();
    let seq7: ExpEtherPdu | null = null;
    const w = watch(cable, (p, i) => {
      // When B NAKs seq 5 (lost), it holds seq 6; a second copy of seq 7 arrives with the original:
      // one of the two is a duplicate of a held frame.
      if (i === 8) seq7 = p;
      if (p.kind === 'nak' && seq7) s.schedule(0, () => b.receiveFrame(new Frame(0xb, 0xa, 1, EXPETHER_ETHERTYPE, seq7!, seq7!.payloadBytes())));
      return i === 6;
    });
    stream(devA);
    s.run({ maxEvents: 1e6 });
    assertAllInOrder(devB.got, N);
    assert.deepEqual(w.lost, [5]);
    assert.deepEqual(w.resent, [5]);
    assert.equal(b.counters.duplicateFrames, 1);
    assert.equal(a.counters.retransmittedFrames, 1);
  });

  it('the timer backstop recovers a lost tail frame (nothing after it reveals the gap)', () => {
    const { s, a, b, devA, devB, cable, bp } = twoBridges();
    const w = watch(cable, (_p, i) => i === N);
    stream(devA);
    s.run({ maxEvents: 1e6 });
    assertAllInOrder(devB.got, N);
    assert.deepEqual(w.lost, [N - 1]);
    assert.equal(b.counters.naksSent, 0);
    assert.deepEqual(w.resent, [N - 1], 'only the old frame is resent');
    assert.ok(s.now() >= bp.retransmitTimeoutNs * 1000, 'recovered by the timeout');
    assert.equal(a.counters.retransmittedFrames, 1);
    assert.equal(a.counters.timeoutResentFrames, 1);
  });

  it('a lost tail of several frames: the timer resends the first, and each partial ACK the next, at once', () => {
    const { s, a, b, devA, devB, cable, bp } = twoBridges();
    const w = watch(cable, (p, i) => p.kind === 'tlp' && i >= N - 2 && i <= N);
    stream(devA);
    s.run({ maxEvents: 1e6 });
    assertAllInOrder(devB.got, N);
    assert.deepEqual(w.lost, [N - 3, N - 2, N - 1]);
    assert.deepEqual(w.resent, [N - 3, N - 2, N - 1]);
    assert.equal(b.counters.naksSent, 0);
    assert.equal(a.counters.timeoutResentFrames, 1, 'one timeout, not three');
    void bp;
  });

  it('the timer backstop recovers lost NAKs: with every NAK lost, the missing frames are still resent', () => {
    const { s, a, b, devA, devB, cable, bp } = twoBridges();
    const w = watch(cable, (p, i) => p.kind === 'nak' || i === 5 || i === 40);
    stream(devA);
    s.run({ maxEvents: 1e6 });
    assertAllInOrder(devB.got, N);
    assert.ok(b.counters.naksSent >= 2, 'the receiver NAKed (and repeated)');
    assert.equal(a.counters.naksReceived, 0);
    assert.equal(w.lost.length, 2);
    for (const seq of w.lost) assert.ok(w.resent.includes(seq), `lost seq ${seq} resent (${w.resent})`);
    assert.ok(a.counters.timeoutResentFrames >= 1, 'by the timer');
    assert.ok(s.now() >= bp.retransmitTimeoutNs * 1000, 'recovered by the timeout');
  });

  it('a lost resend is NAKed again after the measured repair time, before the retransmission timeout', () => {
    const { s, a, b, devA, devB, cable, bp } = twoBridges();
    let copies = 0;
    // Seq 20 lost twice (the original and the first resend), after earlier repairs were measured.
    const w = watch(cable, (p, i) => i === 5 || (p.kind === 'tlp' && p.seq === 20 && ++copies <= 2));
    stream(devA);
    s.run({ maxEvents: 1e6 });
    assertAllInOrder(devB.got, N);
    assert.deepEqual(w.lost, [4, 20, 20]);
    assert.deepEqual(w.resent, [4, 20, 20]);
    assert.equal(b.counters.naksSent, 3, 'seq 4 once, seq 20 twice');
    assert.equal(a.counters.retransmittedFrames, 3, 'the timer resent nothing');
    void bp;
  });

  it('a spurious timeout (ACKs slower than the timeout, nothing lost) resends one frame per firing, not the window frame by frame on each ACK', () => {
    // A timeout shorter than the round trip at this window: it fires with every frame under way.
    const { s, a, devA, devB, cable } = twoBridges({ windowFrames: 64, retransmitTimeoutNs: 3000 });
    stream(devA);
    s.run({ maxEvents: 1e6 });
    assertAllInOrder(devB.got, N);
    assert.equal(cable.lostFrames, 0);
    assert.ok(a.counters.timeoutResentFrames > 0, 'the timeout fired');
    assert.ok(a.counters.retransmittedFrames <= 2 * a.counters.timeoutResentFrames, `${a.counters.retransmittedFrames} resent for ${a.counters.timeoutResentFrames} timeouts: an ACK that stops exactly at the frame a timeout resent may resend the next, once`);
  });

  it('lost ACKs are recovered too: duplicates are discarded, not delivered twice', () => {
    const { s, a, b, devA, devB, cable } = twoBridges();
    let acks = 0;
    cable.dropFilter = (f: Frame) => {
      const p = f.payload as ExpEtherPdu;
      return p.kind === 'ack' && ++acks <= 6;
    };
    stream(devA);
    s.run({ maxEvents: 1e6 });
    assertAllInOrder(devB.got, N);
    assert.ok(a.counters.retransmittedFrames > 0);
    assert.ok(b.counters.duplicateFrames > 0);
  });

  it('a receiver whose PCIe side is blocked holds the sender back; everything arrives once after it unblocks', () => {
    const { s, a, b, devA, devB } = twoBridges();
    devB.hold = true;
    stream(devA);
    s.run({ maxEvents: 1e6, untilPs: 2_000_000_000 }); // 2 ms: many retransmission timeouts
    // B's device holds its credits: B's PCIe queue and egress buffer fill and A's window closes.
    assert.ok(devB.got.length < N);
    assert.ok(a.counters.tlpsToEthernet < N, 'A stopped taking TLPs from PCIe');
    const stuck = devB.got.length;
    s.run({ maxEvents: 1e6, untilPs: 4_000_000_000 });
    assert.equal(devB.got.length, stuck, 'nothing more gets through while blocked');
    void b;
    devB.releaseAll();
    s.run({ maxEvents: 1e6 });
    assertAllInOrder(devB.got, N);
  });

  it('a configuration request from a device is answered Unsupported Request by its bridge', () => {
    const { s, a, devA } = twoBridges();
    devA.send(Tlp.config('CfgRd0', 0x100, 3, 0x200, 0, null));
    s.run();
    assert.equal(a.counters.unsupportedRequests, 1);
    assert.equal(devA.got.length, 1);
    assert.equal(devA.got[0].kind, 'Cpl');
    assert.equal(devA.got[0].status, 1);
    assert.equal(devA.got[0].tag, 3);
  });
});

// ---- The whole default fabric: SSD -> DC buffer -> SSD with frame loss -------------------------

const LEN = 128 * 1024;
const SEED = 0x1234;

function copyThroughDcBuffer(dropNth: number[]) {
  const fabric = buildFabric(loadTopology(), 1);
  const host = boot(fabric, { maxTransferBytes: 131072 });
  const [srcSlot, dstSlot, dcSlot] = fabric.slots;
  assert.ok(srcSlot.device instanceof NvmeSsd && dstSlot.device instanceof NvmeSsd && dcSlot.device instanceof DcBuffer);
  (srcSlot.device as NvmeSsd).store.fillPattern(0, LEN, SEED);
  const dc = host.manager.devicesOf<DcBufferDevice>('dc-buffer')[0];
  const sda = host.manager.lookup('sda').driver;
  const sdb = host.manager.lookup('sdb').driver;
  const channel = dcSlot.bridge.eth.channel as CableChannel;
  let dataFrames = 0;
  channel.dropFilter = (f: Frame) => (f.payload as ExpEtherPdu).kind === 'tlp' && dropNth.includes(++dataFrames);
  const bridgesBefore = fabric.slots.map((s) => ({ ...s.bridge.counters }));
  const start = fabric.scheduler.now();
  let readStatus: NvmeStatus | null = null;
  let writeStatus: NvmeStatus | null = null;
  let readDonePs = 0;
  sda.submitIo('read', 0, LEN / 512, [{ address: dc.bar0, lengthBytes: LEN }], (st) => {
    readStatus = st;
    readDonePs = fabric.scheduler.now();
    sdb.submitIo('write', 0, LEN / 512, [{ address: dc.bar0, lengthBytes: LEN }], (st2) => (writeStatus = st2));
  });
  fabric.scheduler.run({ stop: () => writeStatus !== null, maxEvents: 5e6 });
  const delta = fabric.slots.map((s, i) => {
    const d: Record<string, number> = {};
    for (const k of Object.keys(s.bridge.counters)) d[k] = s.bridge.counters[k] - bridgesBefore[i][k];
    return d;
  });
  return { fabric, host, srcSlot, dstSlot, dcSlot, channel, readStatus: readStatus as NvmeStatus | null, writeStatus: writeStatus as NvmeStatus | null, delta, readPs: readDonePs - start };
}

describe('ExpEther bridges in the default fabric: a direct move survives frame loss', () => {
  let cleanRun: ReturnType<typeof copyThroughDcBuffer> | null = null;
  const clean = () => (cleanRun ??= copyThroughDcBuffer([]));

  it('with no drops there are no retransmissions and the data arrives intact', () => {
    const r = clean();
    assert.ok(r.readStatus && isSuccess(r.readStatus));
    assert.ok(r.writeStatus && isSuccess(r.writeStatus));
    assert.deepEqual((r.dstSlot.device as NvmeSsd).store.read(0, LEN), expectedPattern(SEED, 0, LEN));
    for (const d of r.delta) {
      assert.equal(d.retransmittedFrames, 0);
      assert.equal(d.outOfOrderFrames, 0);
      assert.equal(d.duplicateFrames, 0);
    }
    assert.equal(r.channel.lostFrames, 0);
    // The data went device to device: the SSDs' bridges talked to the DC buffer's bridge.
    assert.ok(r.delta[2].tlpsFromEthernet >= LEN / 128);
  });

  it('dropping the 5th and 17th data frames on the DC buffer cable: retransmitted, still intact', () => {
    const r = copyThroughDcBuffer([5, 17]);
    assert.equal(r.channel.lostFrames, 2);
    assert.ok(r.readStatus && isSuccess(r.readStatus), 'the read completed successfully');
    assert.ok(r.writeStatus && isSuccess(r.writeStatus), 'the write completed successfully');
    assert.deepEqual((r.dcSlot.device as DcBuffer).ddr.read(0, LEN), expectedPattern(SEED, 0, LEN));
    assert.deepEqual((r.dstSlot.device as NvmeSsd).store.read(0, LEN), expectedPattern(SEED, 0, LEN));
    // The source SSD's bridge sent the lost MWr frames and resent them; the DC buffer's bridge saw the gap.
    assert.equal(r.delta[0].retransmittedFrames, 2, 'selective repeat: the two lost frames, nothing else');
    assert.equal(r.delta[2].naksSent, 2, 'one NAK per gap');
    assert.ok(r.delta[2].heldOutOfOrder > 0, `receiver held ${r.delta[2].heldOutOfOrder} frames out of order`);
    assert.ok(r.readPs >= clean().readPs, 'loss never makes the read faster');
  });
});

describe('ExpEther bridges in the default fabric: random loss everywhere', () => {
  it('boot and a direct move both survive 0.3% random frame loss on every cable', () => {
    const fabric = buildFabric(loadTopology(), 1);
    const rng = new RngStream(7);
    const channels = new Set<CableChannel>();
    for (const s of fabric.slots) channels.add(s.bridge.eth.channel as CableChannel);
    channels.add(fabric.hostBridge.eth.channel as CableChannel);
    for (const sw of fabric.switches) for (const p of sw.ports) if (p.channel) channels.add(p.channel as CableChannel);
    for (const c of channels) c.dropFilter = () => rng.nextFloat() < 0.003;
    const host = boot(fabric, { maxTransferBytes: 131072 });
    const src = fabric.slots[0].device as NvmeSsd;
    const dst = fabric.slots[1].device as NvmeSsd;
    src.store.fillPattern(0, LEN, SEED);
    const dc = host.manager.devicesOf<DcBufferDevice>('dc-buffer')[0];
    let st: NvmeStatus | null = null;
    host.manager.lookup('sda').driver.submitIo('read', 0, LEN / 512, [{ address: dc.bar0, lengthBytes: LEN }], (s1) => {
      assert.ok(isSuccess(s1));
      host.manager.lookup('sdb').driver.submitIo('write', 0, LEN / 512, [{ address: dc.bar0, lengthBytes: LEN }], (s2) => (st = s2));
    });
    fabric.scheduler.run({ stop: () => st !== null, maxEvents: 5e6 });
    assert.ok(st && isSuccess(st));
    assert.deepEqual(dst.store.read(0, LEN), expectedPattern(SEED, 0, LEN));
    const lost = [...channels].reduce((n, c) => n + c.lostFrames, 0);
    assert.ok(lost > 0, 'frames were actually lost');
  });

  it('boots with the schema minimum window of one frame', () => {
    const t = loadTopology();
    t.expether.windowFrames = 1;
    const host = boot(buildFabric(t, 1), { maxTransferBytes: 131072 });
    assert.equal(host.manager.blockDevices().length, 2);
  });
});
