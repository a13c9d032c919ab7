import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { VirtualScheduler } from '../../src/core/scheduler.js';
import { TraceRegistry } from '../../src/core/trace.js';
import { PcieLink, type FcCredits, type PciePort, type TlpReceiver } from '../../src/pcie/link.js';
import {
  ackIntervalBytes,
  DLLP_BYTES,
  effectiveWriteBytesPerSec,
  linkBytesPerSec,
  SKP_OVERHEAD_FRACTION,
  TLP_FRAMING_BYTES,
  type PcieGeneration,
  type PcieLanes,
} from '../../src/pcie/link-params.js';
import { CPL_STATUS, Tlp } from '../../src/pcie/tlp.js';

const BIG: FcCredits = { postedHeaders: 1e6, postedDataBytes: 1e9, nonPostedHeaders: 1e6, completionHeaders: Infinity, completionDataBytes: Infinity };

interface Arrival {
  tlp: Tlp;
  t: number;
}

/** Records arrivals; releases each TLP at once unless `hold` is set. */
class Recorder implements TlpReceiver {
  readonly arrivals: Arrival[] = [];
  readonly held: Tlp[] = [];
  readyCalls: PciePort[] = [];
  hold = false;
  onReady: (() => void) | null = null;
  onReceive: ((tlp: Tlp) => void) | null = null;
  constructor(private readonly s: VirtualScheduler) {}
  receiveTlp(tlp: Tlp, port: PciePort): void {
    this.arrivals.push({ tlp, t: this.s.now() });
    if (this.hold) this.held.push(tlp);
    else port.release(tlp);
    this.onReceive?.(tlp);
  }
  portReady(port: PciePort): void {
    this.readyCalls.push(port);
    this.onReady?.();
  }
  releaseAll(port: PciePort): void {
    for (const t of this.held.splice(0)) port.release(t);
  }
}

function setup(opts: { gen?: PcieGeneration; lanes?: PcieLanes; latencyNs?: number; txQueueTlps?: number; up?: FcCredits; down?: FcCredits; mps?: number } = {}) {
  const s = new VirtualScheduler();
  const trace = new TraceRegistry();
  const link = new PcieLink(
    'L',
    s,
    { generation: opts.gen ?? 1, lanes: opts.lanes ?? 1, latencyNs: opts.latencyNs ?? 100, mpsBytes: opts.mps ?? 128, txQueueTlps: opts.txQueueTlps ?? 32 },
    opts.up ?? BIG,
    opts.down ?? BIG,
    trace,
  );
  const upRx = new Recorder(s);
  const downRx = new Recorder(s);
  link.up.attach(upRx);
  link.down.attach(downRx);
  return { s, link, trace, upRx, downRx };
}

function bytes(n: number, fill = 0xab): Uint8Array {
  return new Uint8Array(n).fill(fill);
}

function psPerByte(gen: PcieGeneration, lanes: PcieLanes): number {
  return 1e12 / (linkBytesPerSec(gen, lanes) * (1 - SKP_OVERHEAD_FRACTION));
}

describe('link-params arithmetic', () => {
  it('line rates after encoding', () => {
    assert.equal(linkBytesPerSec(1, 1), 250e6);
    assert.equal(linkBytesPerSec(1, 4), 1e9);
    assert.equal(linkBytesPerSec(1, 8), 2e9);
    assert.equal(linkBytesPerSec(2, 1), 500e6);
    assert.ok(Math.abs(linkBytesPerSec(3, 1) - (8e9 * 128) / 130 / 8) < 1e-3);
    assert.ok(Math.abs(linkBytesPerSec(3, 16) - (16 * 8e9 * 128) / 130 / 8) < 1e-2);
  });

  it('framing and ACK interval constants', () => {
    assert.equal(TLP_FRAMING_BYTES, 8);
    assert.equal(DLLP_BYTES, 8);
    assert.equal(ackIntervalBytes(128, 1), 237);
    assert.equal(ackIntervalBytes(128, 8), 67 * 8);
    assert.throws(() => ackIntervalBytes(100, 1), RangeError);
  });

  it('effectiveWriteBytesPerSec: payload share of the wire after SKP', () => {
    // 128 B payloads: 128 / (128 + 12 + 8) of the SKP-reduced line rate.
    const expected = (250e6 * (1 - 4 / 1538) * 128) / 148;
    assert.ok(Math.abs(effectiveWriteBytesPerSec(1, 1, 128, 128 * 1000) - expected) < 1e-6);
    // A partial last TLP costs a whole header.
    const partial = (250e6 * (1 - 4 / 1538) * 200) / (200 + 2 * 20);
    assert.ok(Math.abs(effectiveWriteBytesPerSec(1, 1, 128, 200) - partial) < 1e-6);
  });
});

describe('PcieLink timing', () => {
  for (const [gen, lanes] of [
    [1, 1],
    [1, 8],
    [3, 1],
  ] as [PcieGeneration, PcieLanes][]) {
    it(`Gen${gen} x${lanes}: psPerByte follows the line rate less SKP overhead`, () => {
      const { link } = setup({ gen, lanes });
      assert.ok(Math.abs(link.psPerByte - psPerByte(gen, lanes)) < 1e-9);
      assert.equal(link.wireTimePs(148), Math.ceil(148 * psPerByte(gen, lanes)));
    });
  }

  it('a 3DW MWr arrives at start + ceil((12 + payload + 8) * psPerByte) + latency', () => {
    const { s, link, downRx } = setup({ gen: 1, lanes: 1, latencyNs: 100 });
    const start = 1_234_567;
    s.schedule(start, () => assert.equal(link.up.send(Tlp.memWrite(1, 0x1000, bytes(128))), true));
    s.run();
    assert.equal(downRx.arrivals.length, 1);
    assert.equal(downRx.arrivals[0].t, start + Math.ceil((12 + 128 + 8) * psPerByte(1, 1)) + 100_000);
  });

  it('a 4DW MWr (address >= 4 GiB) carries a 16-byte header', () => {
    const { s, link, downRx } = setup({ gen: 1, lanes: 8, latencyNs: 50 });
    link.up.send(Tlp.memWrite(1, 0x1_2345_0000, bytes(64)));
    s.run();
    assert.equal(downRx.arrivals[0].t, Math.ceil((16 + 64 + 8) * psPerByte(1, 8)) + 50_000);
    assert.equal(link.up.counters().wireBytes, 16 + 64 + 8);
  });

  it('MRd has no payload on the wire; CplD carries its data; the upstream direction works the same', () => {
    const { s, link, downRx, upRx } = setup({ gen: 3, lanes: 1, latencyNs: 0 });
    const rd = Tlp.memRead(1, 3, 0x2000, 512);
    link.up.send(rd);
    link.down.send(Tlp.completion(rd, 2, CPL_STATUS.SC, bytes(64), 512, 0x2000));
    s.run();
    const pb = psPerByte(3, 1);
    assert.equal(downRx.arrivals[0].t, Math.ceil(20 * pb));
    assert.equal(upRx.arrivals[0].t, Math.ceil((12 + 64 + 8) * pb));
  });

  it('latencyNs is rounded to whole picoseconds', () => {
    const { link } = setup({ latencyNs: 12.3456 });
    assert.equal(link.latencyPs, 12346);
  });

  it('back-to-back TLPs serialize: N MWr of 128 B take N wire times', () => {
    const { s, link, downRx } = setup({ gen: 1, lanes: 4, latencyNs: 100 });
    const n = 100;
    for (let i = 0; i < n; i++) assert.equal(link.up.send(Tlp.memWrite(1, 0x10000 + 128 * i, bytes(128))), true);
    s.run();
    const dur = Math.ceil(148 * psPerByte(1, 4));
    assert.equal(downRx.arrivals.length, n);
    downRx.arrivals.forEach((a, i) => {
      assert.equal(a.t, (i + 1) * dur + 100_000, `TLP ${i}`);
      assert.equal(a.tlp.address, 0x10000 + 128 * i, 'in order');
    });
    assert.equal(link.up.counters().busyPs, n * dur);
  });

  it('a TLP sent while the wire is busy starts when the previous one ends', () => {
    const { s, link, downRx } = setup({ gen: 1, lanes: 1, latencyNs: 0 });
    const dur = Math.ceil(148 * psPerByte(1, 1));
    link.up.send(Tlp.memWrite(1, 0, bytes(128)));
    s.schedule(dur / 2, () => link.up.send(Tlp.memWrite(1, 128, bytes(128))));
    s.schedule(5 * dur, () => link.up.send(Tlp.memWrite(1, 256, bytes(128))));
    s.run();
    assert.deepEqual(
      downRx.arrivals.map((a) => a.t),
      [dur, 2 * dur, 6 * dur],
    );
  });

  for (const [gen, lanes] of [
    [1, 1],
    [1, 8],
    [2, 4],
    [3, 1],
    [3, 16],
  ] as [PcieGeneration, PcieLanes][]) {
    it(`Gen${gen} x${lanes}: a long MWr stream achieves effectiveWriteBytesPerSec within 1%, ACKs flow the other way`, () => {
      const { s, link, downRx } = setup({ gen, lanes, latencyNs: 0 });
      const n = 2000;
      for (let i = 0; i < n; i++) link.up.send(Tlp.memWrite(1, 128 * i, bytes(128)));
      s.run();
      const last = downRx.arrivals[n - 1].t;
      const measured = (n * 128) / (last / 1e12);
      const expected = effectiveWriteBytesPerSec(gen, lanes, 128, n * 128);
      assert.ok(Math.abs(measured - expected) / expected < 0.01, `measured ${measured} B/s, expected ${expected} B/s`);
      // ACK DLLPs: one per ackIntervalBytes of received TLP bytes, on the reverse direction only.
      const wire = link.up.counters().wireBytes;
      assert.equal(wire, n * 148);
      assert.equal(link.up.counters().dllps, 0);
      const acks = link.down.counters().dllps;
      const expectedAcks = wire / ackIntervalBytes(128, lanes);
      assert.ok(Math.abs(acks - expectedAcks) <= 1, `acks ${acks}, expected about ${expectedAcks}`);
      assert.equal(link.down.counters().wireBytes, acks * DLLP_BYTES);
      assert.equal(link.down.counters().tlps, 0);
    });
  }

  it('an ACK DLLP occupies the reverse direction and delays a TLP sent behind it', () => {
    // Gen1 x1, MPS 128: an ACK per 237 B received; the 2nd 148-byte TLP triggers the first ACK.
    const { s, link, downRx, upRx } = setup({ gen: 1, lanes: 1, latencyNs: 100 });
    const pb = psPerByte(1, 1);
    const tlpDur = Math.ceil(148 * pb);
    const dllpDur = Math.ceil(8 * pb);
    let replyAt = -1;
    downRx.onReceive = (tlp) => {
      if (tlp.address === 128) {
        replyAt = s.now();
        link.down.send(Tlp.memWrite(2, 0x9000, bytes(128)));
      }
    };
    link.up.send(Tlp.memWrite(1, 0, bytes(128)));
    link.up.send(Tlp.memWrite(1, 128, bytes(128)));
    s.run();
    assert.equal(replyAt, 2 * tlpDur + 100_000);
    assert.equal(link.down.counters().dllps, 1);
    assert.equal(upRx.arrivals[0].t, replyAt + dllpDur + tlpDur + 100_000);
  });
});

describe('PcieLink flow control', () => {
  const small = (p: Partial<FcCredits>): FcCredits => ({ postedHeaders: 4, postedDataBytes: 1 << 20, nonPostedHeaders: 4, completionHeaders: Infinity, completionDataBytes: Infinity, ...p });

  it('a receiver that never releases gets at most postedHeaders MWr; send refuses once txQueueTlps wait', () => {
    const { s, link, downRx, upRx } = setup({ down: small({ postedHeaders: 4 }), up: small({ postedHeaders: 4 }), txQueueTlps: 3 });
    downRx.hold = true;
    const results: boolean[] = [];
    for (let i = 0; i < 8; i++) results.push(link.up.send(Tlp.memWrite(1, 128 * i, bytes(128))));
    assert.deepEqual(results, [true, true, true, true, true, true, true, false]);
    assert.equal(link.up.queuedTlps(), 3);
    assert.equal(link.up.canSend('MWr'), false);
    s.run();
    assert.equal(downRx.arrivals.length, 4, 'only as many as the posted header credits');
    assert.equal(link.up.queuedTlps(), 3);
    assert.equal(link.up.counters().creditStalls, 3);
    assert.equal(upRx.readyCalls.length, 0);

    // Release: credits return by UpdateFC, the queue drains, and the sender hears portReady.
    let resent = false;
    upRx.onReady = () => {
      if (!resent) resent = link.up.send(Tlp.memWrite(1, 128 * 7, bytes(128)));
    };
    downRx.hold = false;
    downRx.releaseAll(link.down);
    s.run();
    assert.equal(resent, true);
    assert.ok(upRx.readyCalls.length >= 1);
    assert.equal(upRx.readyCalls[0], link.up);
    assert.equal(downRx.arrivals.length, 8);
    assert.deepEqual(
      downRx.arrivals.map((a) => a.tlp.address),
      Array.from({ length: 8 }, (_, i) => 128 * i),
    );
    assert.equal(link.up.queuedTlps(), 0);
    // Credit returns are UpdateFC DLLPs in the reverse direction.
    assert.ok(link.down.counters().dllps >= 1);
    // Queued TLPs only leave after the UpdateFC has crossed the link.
    assert.ok(downRx.arrivals[4].t > downRx.arrivals[3].t + link.latencyPs);
  });

  it('posted data credits bound MWr as well as header credits', () => {
    const { s, link, downRx } = setup({ down: small({ postedHeaders: 16, postedDataBytes: 256 }) });
    downRx.hold = true;
    for (let i = 0; i < 4; i++) link.up.send(Tlp.memWrite(1, 128 * i, bytes(128)));
    s.run();
    assert.equal(downRx.arrivals.length, 2);
    downRx.hold = false;
    downRx.releaseAll(link.down);
    s.run();
    assert.equal(downRx.arrivals.length, 4);
  });

  it('non-posted header credits bound MRd', () => {
    const { s, link, downRx } = setup({ down: small({ nonPostedHeaders: 2 }) });
    downRx.hold = true;
    for (let i = 0; i < 5; i++) link.up.send(Tlp.memRead(1, i, 0x1000 * i, 64));
    s.run();
    assert.equal(downRx.arrivals.length, 2);
    downRx.hold = false;
    downRx.releaseAll(link.down);
    s.run();
    assert.deepEqual(
      downRx.arrivals.map((a) => a.tlp.tag),
      [0, 1, 2, 3, 4],
    );
  });

  it('a completion or read queued behind a credit-blocked posted write is not delivered before it', () => {
    const { s, link, downRx } = setup({ down: small({ postedHeaders: 1 }) });
    downRx.hold = true;
    const req = Tlp.memRead(9, 5, 0x4000, 64);
    link.up.send(Tlp.memWrite(1, 0xa000, bytes(128))); // uses the only posted credit
    link.up.send(Tlp.memWrite(1, 0xb000, bytes(128))); // waits for credits
    link.up.send(Tlp.completion(req, 1, CPL_STATUS.SC, bytes(64), 64, 0x4000)); // has credits, must not pass
    link.up.send(Tlp.memRead(1, 7, 0xc000, 64)); // has credits, must not pass
    s.run();
    assert.deepEqual(
      downRx.arrivals.map((a) => a.tlp.kind),
      ['MWr'],
    );
    downRx.hold = false;
    downRx.releaseAll(link.down);
    s.run();
    assert.deepEqual(
      downRx.arrivals.map((a) => `${a.tlp.kind}@${a.tlp.address.toString(16)}`),
      ['MWr@a000', 'MWr@b000', 'CplD@0', 'MRd@c000'],
    );
    for (let i = 1; i < downRx.arrivals.length; i++) assert.ok(downRx.arrivals[i].t > downRx.arrivals[i - 1].t);
  });

  it('a posted write may pass a credit-blocked completion', () => {
    const { s, link, downRx } = setup({ down: { ...small({}), completionHeaders: 1, completionDataBytes: 4096 } });
    downRx.hold = true;
    const req = Tlp.memRead(9, 5, 0x4000, 64);
    link.up.send(Tlp.completion(req, 1, CPL_STATUS.SC, bytes(64), 64, 0x4000));
    link.up.send(Tlp.completion(req, 1, CPL_STATUS.SC, bytes(64), 64, 0x4040)); // blocked: no CPL header credit
    link.up.send(Tlp.memWrite(1, 0xa000, bytes(128)));
    s.run();
    assert.deepEqual(
      downRx.arrivals.map((a) => a.tlp.kind),
      ['CplD', 'MWr'],
    );
    downRx.hold = false;
    downRx.releaseAll(link.down);
    s.run();
    assert.equal(downRx.arrivals.length, 3);
    assert.equal(downRx.arrivals[2].tlp.lowerAddress, 0x40);
  });

  it('canSend agrees with send: false exactly when send would refuse', () => {
    // Header credits left, data credits exhausted: the queue fills, so send refuses; canSend must say so.
    const { link, downRx } = setup({ down: small({ postedHeaders: 10, postedDataBytes: 128 }), txQueueTlps: 2 });
    downRx.hold = true;
    assert.equal(link.up.send(Tlp.memWrite(1, 0, bytes(128))), true);
    assert.equal(link.up.send(Tlp.memWrite(1, 128, bytes(128))), true);
    assert.equal(link.up.send(Tlp.memWrite(1, 256, bytes(128))), true);
    const can = link.up.canSend('MWr');
    const did = link.up.send(Tlp.memWrite(1, 384, bytes(128)));
    assert.equal(did, false);
    assert.equal(can, did);
  });
});

describe('PcieLink counters', () => {
  it('count TLPs by kind, payload and wire bytes, and busy time per direction', () => {
    const { s, link, trace } = setup({ gen: 1, lanes: 8, latencyNs: 10 });
    const pb = psPerByte(1, 8);
    const rd = Tlp.memRead(1, 1, 0x100, 128);
    const sent = [
      Tlp.memWrite(1, 0x1000, bytes(128)),
      Tlp.memWrite(1, 0x1_0000_0000, bytes(64)), // 4DW
      rd,
      Tlp.completion(rd, 2, CPL_STATUS.SC, bytes(32), 32, 0x100),
      Tlp.completion(rd, 2, CPL_STATUS.UR, null, 0, 0),
      Tlp.config('CfgRd0', 1, 2, 0x100, 0, null),
      Tlp.config('CfgWr0', 1, 3, 0x100, 4, bytes(4)),
    ];
    for (const t of sent) link.up.send(t);
    s.run();
    const wires = [12 + 128 + 8, 16 + 64 + 8, 12 + 8, 12 + 32 + 8, 12 + 8, 12 + 8, 12 + 4 + 8];
    const c = link.up.counters();
    assert.equal(c.tlps, 7);
    assert.equal(c.MWr, 2);
    assert.equal(c.MRd, 1);
    assert.equal(c.CplD, 1);
    assert.equal(c.Cpl, 1);
    assert.equal(c.Cfg, 2);
    assert.equal(c.MWrPayloadBytes, 192);
    assert.equal(c.CplDPayloadBytes, 32);
    assert.equal(c.payloadBytes, 128 + 64 + 32 + 4);
    assert.equal(c.wireBytes, wires.reduce((a, b) => a + b, 0));
    assert.equal(c.busyPs, wires.reduce((a, w) => a + Math.ceil(w * pb), 0));
    assert.equal(c.dllps, 0);
    assert.equal(c.creditStalls, 0);
    // The trace registry sees the same counters under <name>.downstream / <name>.upstream, with the
    // time integrals: no TLP waited for credits; the non-posted ones (the MRd, CfgRd0, CfgWr0, sent
    // 3rd, 6th and 7th at time 0) waited for the wire behind those committed before them.
    const startPs = wires.map((_, i) => wires.slice(0, i).reduce((a, w) => a + Math.ceil(w * pb), 0));
    assert.deepEqual(trace.read('L.downstream'), { ...c, creditWaitPs: 0, readQueuedPs: startPs[2] + startPs[5] + startPs[6] });
    assert.equal(trace.read('L.upstream').tlps, 0);
    assert.deepEqual(trace.names().sort(), ['L.downstream', 'L.upstream']);
  });

  it('a port with nothing attached throws when a TLP arrives', () => {
    const s = new VirtualScheduler();
    const link = new PcieLink('X', s, { generation: 1, lanes: 1, latencyNs: 0, mpsBytes: 128, txQueueTlps: 4 }, BIG, BIG);
    link.up.send(Tlp.memWrite(1, 0, bytes(4)));
    assert.throws(() => s.run(), /nothing is attached/);
  });
});
