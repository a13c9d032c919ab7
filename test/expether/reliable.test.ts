import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { VirtualScheduler } from '../../src/core/scheduler.js';
import { isSuccess, type NvmeStatus } from '../../src/devices/nvme/nvme-defs.js';
import { DcBuffer } from '../../src/devices/dc-buffer.js';
import { NvmeSsd } from '../../src/devices/nvme-ssd.js';
import { expectedPattern } from '../../src/devices/sparse-memory.js';
import type { Frame } from '../../src/ethernet/frame.js';
import { CableChannel, EthPort } from '../../src/ethernet/port.js';
import type { BridgeParams } from '../../src/expether/bridge.js';
import { IoSideBridge } from '../../src/expether/io-bridge.js';
import { ExpEtherPdu } from '../../src/expether/pdu.js';
import { RngStream } from '../../src/core/rng.js';
import { ReliableReceiver, ReliableSender } from '../../src/expether/reliable.js';
import { PcieLink, type FcCredits, type PciePort, type TlpReceiver } from '../../src/pcie/link.js';
import { Tlp } from '../../src/pcie/tlp.js';
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

  it('go-back-N: takeForRetransmit returns every unacknowledged PDU in order and restamps them', () => {
    const s = new ReliableSender(8);
    const all: ExpEtherPdu[] = [];
    for (let i = 0; i < 6; i++) {
      const p = pdu();
      s.track(p, 100 + i);
      all.push(p);
    }
    s.acknowledge(2);
    const again = s.takeForRetransmit(5000);
    assert.deepEqual(again, all.slice(3));
    assert.equal(s.retransmissions, 3);
    assert.equal(s.oldestSentPs(), 5000);
    assert.equal(s.inFlight(), 3, 'retransmitting does not release anything');
    s.acknowledge(5);
    assert.deepEqual(s.takeForRetransmit(6000), []);
    assert.equal(s.retransmissions, 3);
  });

  it('property: matches a simple model over long runs (including internal compaction)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 64 }),
        fc.array(fc.oneof(fc.record({ op: fc.constant('send' as const), n: fc.integer({ min: 1, max: 80 }) }), fc.record({ op: fc.constant('ack' as const), back: fc.integer({ min: 0, max: 70 }) }), fc.record({ op: fc.constant('rtx' as const) })), {
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
            } else {
              const r = s.takeForRetransmit(now);
              assert.deepEqual(
                r.map((p) => p.seq),
                Array.from({ length: next - 1 - acked }, (_, i) => acked + 1 + i),
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
    const r = s.takeForRetransmit(9999);
    assert.equal(r.length, 500);
    assert.equal(r[0].seq, 2000);
    assert.equal(r[499].seq, 2499);
    assert.equal(s.oldestSentPs(), 9999);
  });
});

describe('ReliableReceiver', () => {
  it('accepts only the next expected sequence number', () => {
    const r = new ReliableReceiver();
    assert.equal(r.cumulativeAck(), -1, 'nothing acknowledged yet');
    assert.equal(r.classify(0), 'next');
    assert.equal(r.classify(1), 'gap');
    r.expected++;
    assert.equal(r.classify(0), 'duplicate');
    assert.equal(r.classify(1), 'next');
    assert.equal(r.classify(5), 'gap');
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

function twoBridges(params: Partial<BridgeParams> = {}) {
  const s = new VirtualScheduler();
  const bp: BridgeParams = { bridgeLatencyNs: 800, windowFrames: 8, retransmitTimeoutNs: 20_000, ackEveryFrames: 4, ackDelayNs: 2000, ...params };
  const eth = { rateBitsPerSec: 10e9, queueLimitBytes: 1 << 20 };
  const ea = new EthPort('a', s, eth);
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
    assert.equal(b.counters.duplicateFrames, 0);
    assert.equal(cable.lostFrames, 0);
    assert.ok(b.counters.acksSent >= N / 4 - 1, 'the receiver ACKs at least every ackEveryFrames');
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

  it('lost data frames are recovered by go-back-N: exactly once, in order', () => {
    const { s, a, b, devA, devB, cable, bp } = twoBridges();
    let tlpFrames = 0;
    const lostSeqs: number[] = [];
    cable.dropFilter = (f: Frame) => {
      const p = f.payload as ExpEtherPdu;
      if (p.kind !== 'tlp') return false;
      tlpFrames++;
      if (tlpFrames === 5 || tlpFrames === 17 || tlpFrames === 60) {
        lostSeqs.push(p.seq);
        return true;
      }
      return false;
    };
    stream(devA);
    s.run({ maxEvents: 1e6 });
    assertAllInOrder(devB.got, N);
    assert.equal(cable.lostFrames, 3);
    assert.ok(a.counters.retransmittedFrames > 0);
    assert.ok(b.counters.outOfOrderFrames > 0);
    assert.equal(a.counters.tlpsToEthernet, N, 'retransmissions are not new TLPs');
    assert.equal(a.counters.framesSent, N + a.counters.retransmittedFrames);
    // Recovery waits for the retransmission timeout at least once.
    assert.ok(s.now() >= bp.retransmitTimeoutNs * 1000);
    assert.equal(lostSeqs.length, 3);
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
  const dc = host.manager.dcBuffers()[0];
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
    assert.ok(r.delta[0].retransmittedFrames > 0, `sender retransmissions ${r.delta[0].retransmittedFrames}`);
    assert.ok(r.delta[2].outOfOrderFrames > 0, `receiver out-of-order frames ${r.delta[2].outOfOrderFrames}`);
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
    const dc = host.manager.dcBuffers()[0];
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
