import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DconnectError } from '../../src/core/errors.js';
import { VirtualScheduler } from '../../src/core/scheduler.js';
import type { NetPort, NetReceiver } from '../../src/devices/net-port.js';
import { MacPort } from '../../src/ethernet/mac-port.js';
import { CableChannel, EthPort } from '../../src/ethernet/port.js';
import { BT_FRAME_HEADER_BYTES, BT_TYPE, decodeBtHeader, encodeBtFrame } from '../../src/net/block-transfer.js';
import { ClientNode, type ClientParams } from '../../src/net/client-node.js';

const A_MAC = 0x0200_0000_0001;
const B_MAC = 0x0200_0000_0002;
const C_MAC = 0x0200_0000_0003;
const PARAMS: ClientParams = { perFrameCpuNs: 300, windowFrames: 16, creditEveryFrames: 4 };
const WIRE_PS = 1_000_000; // 1 us from one station to the other

/**
 * One station's side of a fake point-to-point wire: frames reach the far side's receiver WIRE_PS
 * after `send`; `drop` loses chosen frames, `refuse` makes `send` return false (netReady follows
 * after a while), and `onSend` sees each frame as it is accepted.
 */
class FakeWire implements NetPort {
  receiver: NetReceiver | null = null;
  peer: FakeWire | null = null;
  readonly sent: Uint8Array[] = [];
  drop: (frame: Uint8Array) => boolean = () => false;
  refuse: (frame: Uint8Array) => boolean = () => false;
  refusals = 0;
  onSend: (frame: Uint8Array) => void = () => {};
  constructor(private readonly s: VirtualScheduler) {}
  attach(r: NetReceiver): void {
    this.receiver = r;
  }
  send(frame: Uint8Array): boolean {
    if (this.refuse(frame)) {
      this.refusals++;
      this.s.schedule(500_000, () => this.receiver!.netReady());
      return false;
    }
    this.sent.push(frame);
    this.onSend(frame);
    if (!this.drop(frame)) {
      const to = this.peer!;
      this.s.schedule(WIRE_PS, () => to.receiver!.netReceive(frame));
    }
    return true;
  }
}

function pattern(offset: number, length: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => ((offset + i) * 131 + ((offset + i) >> 9)) & 0xff);
}

function sameBytes(x: Uint8Array, y: Uint8Array): boolean {
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

/** Two clients joined by fake wires. */
function pair(pa: Partial<ClientParams> = {}, pb: Partial<ClientParams> = {}) {
  const s = new VirtualScheduler();
  const wa = new FakeWire(s);
  const wb = new FakeWire(s);
  wa.peer = wb;
  wb.peer = wa;
  const a = new ClientNode('a', s, { ...PARAMS, ...pa }, wa, A_MAC);
  const b = new ClientNode('b', s, { ...PARAMS, ...pb }, wb, B_MAC);
  return { s, a, b, wa, wb };
}

/** Runs a stream of `length` bytes from a to b; returns what b's application got and how each side ended. */
function stream(p: ReturnType<typeof pair>, length: number, frameBytes: number, id = 1) {
  const got = new Uint8Array(length);
  const offsets: number[] = [];
  const ends: { a?: Error | null; b?: Error | null } = {};
  p.b.receive(id, A_MAC, length, frameBytes, (off, data) => {
    offsets.push(off);
    got.set(data, off);
  }, (e) => (ends.b = e));
  p.a.send(id, B_MAC, length, frameBytes, (off, len) => pattern(off, len), (e) => (ends.a = e));
  p.s.run({ maxEvents: 1e6 });
  return { got, offsets, ends };
}

describe('ClientNode streams', () => {
  it('a stream arrives whole, in order and byte-exact, and both sides finish', () => {
    const p = pair();
    const length = 100_000; // 97 frames of 1 KiB and one of 672 B
    const { got, offsets, ends } = stream(p, length, 1024);
    assert.equal(ends.a, null);
    assert.equal(ends.b, null);
    assert.deepEqual(got, pattern(0, length));
    assert.deepEqual(
      offsets,
      Array.from({ length: 98 }, (_, i) => i * 1024),
    );
    assert.equal(p.a.counters.txFrames, 98);
    assert.equal(p.a.counters.txPayloadBytes, length);
    assert.equal(p.b.counters.rxFrames, 98);
    assert.equal(p.b.counters.rxPayloadBytes, length);
    assert.equal(p.b.counters.creditsSent, p.a.counters.creditsReceived);
    assert.equal(p.a.counters.badFrames + p.b.counters.badFrames, 0);
    const last = decodeBtHeader(p.wa.sent.at(-1)!);
    assert.deepEqual([last.type, last.seq, last.value], [BT_TYPE.DATA, 97, 672]);
  });

  it('the sender never sends a frame the receiver has not granted, and the window is used', () => {
    const p = pair({}, { windowFrames: 8, creditEveryFrames: 2 });
    let granted = 0;
    let maxAhead = 0;
    let consumed = 0;
    // Credit counts once it reaches the sender; data counts when it leaves it.
    p.wb.onSend = (f) => {
      const h = decodeBtHeader(f);
      if (h.type === BT_TYPE.CREDIT) p.s.schedule(WIRE_PS, () => (granted = Math.max(granted, h.value)));
    };
    p.wa.onSend = (f) => {
      const h = decodeBtHeader(f);
      assert.ok(h.seq < granted, `frame ${h.seq} sent with credit only below ${granted}`);
      maxAhead = Math.max(maxAhead, h.seq + 1 - consumed);
    };
    const length = 64 * 512;
    const got = new Uint8Array(length);
    let done = false;
    p.b.receive(1, A_MAC, length, 512, (off, d) => {
      got.set(d, off);
      consumed = off / 512 + 1;
    }, (e) => (done = e === null));
    p.a.send(1, B_MAC, length, 512, pattern, () => {});
    p.s.run({ maxEvents: 1e6 });
    assert.ok(done);
    assert.deepEqual(got, pattern(0, length));
    assert.ok(maxAhead <= 8, `at most the window ahead of the application (${maxAhead})`);
    assert.ok(maxAhead >= 4, `and the window is actually used (${maxAhead})`);
  });

  it('a window smaller than the credit interval still completes (credit when the grant is used up)', () => {
    const p = pair({}, { windowFrames: 3, creditEveryFrames: 8 });
    const { got, ends } = stream(p, 40 * 256, 256);
    assert.equal(ends.b, null);
    assert.deepEqual(got, pattern(0, 40 * 256));
  });

  it('a lost frame is a gap: the receiver fails with PROTOCOL, and after that delivers and grants nothing', () => {
    // A slow receiver has frames before the gap still queued for its CPU when the gap shows.
    const p = pair({ perFrameCpuNs: 300 }, { perFrameCpuNs: 1000, windowFrames: 16, creditEveryFrames: 4 });
    p.wa.drop = (f) => {
      const h = decodeBtHeader(f);
      return h.type === BT_TYPE.DATA && h.seq === 8;
    };
    const log: string[] = [];
    let failedAt = -1;
    const creditTimes: number[] = [];
    p.wb.onSend = () => creditTimes.push(p.s.now());
    let err: Error | null = null;
    p.b.receive(1, A_MAC, 20 * 1024, 1024, (off) => log.push(`sink ${off / 1024}`), (e) => {
      err = e;
      failedAt = p.s.now();
      log.push('done');
    });
    p.a.send(1, B_MAC, 20 * 1024, 1024, pattern, () => {});
    p.s.run({ maxEvents: 1e6 });
    assert.ok(err !== null && (err as Error) instanceof DconnectError);
    const e = err as DconnectError;
    assert.equal(e.code, 'PROTOCOL');
    assert.match(e.message, /stream 1 expected frame 8 but got 9/);
    assert.equal(log.at(-1), 'done', `nothing reaches the application after the failure: ${log.join(', ')}`);
    assert.deepEqual(
      log.slice(0, -1),
      log.slice(0, -1).map((_, i) => `sink ${i}`),
      'what it got before is in order',
    );
    assert.ok(log.length - 1 < 8, 'frames still queued behind the CPU at the failure were not delivered');
    assert.ok(creditTimes.every((t) => t <= failedAt), 'no credit after the failure');
    assert.ok(p.b.counters.badFrames > 0, 'frames after the failure belong to no stream');
  });

  it('a frame from the wrong peer, of an unknown stream or malformed is counted as bad and changes nothing', () => {
    const p = pair();
    const intruder = (seq: number, src = C_MAC, stream = 1) => encodeBtFrame({ dst: B_MAC, src, type: BT_TYPE.DATA, stream, seq, value: 1024 }, pattern(0, 1024));
    p.s.schedule(3_000_000, () => {
      p.b.netReceive(intruder(0));
      p.b.netReceive(intruder(3, A_MAC, 9));
      const junk = intruder(1);
      junk[14] = 7;
      p.b.netReceive(junk);
      p.a.netReceive(encodeBtFrame({ dst: A_MAC, src: C_MAC, type: BT_TYPE.CREDIT, stream: 1, seq: 0, value: 1000 }, null));
    });
    const { got, ends } = stream(p, 30 * 1024, 1024);
    assert.equal(ends.b, null);
    assert.deepEqual(got, pattern(0, 30 * 1024));
    assert.equal(p.b.counters.badFrames, 3);
    assert.equal(p.a.counters.badFrames, 1);
    assert.equal(p.a.counters.creditsReceived, p.b.counters.creditsSent, 'the forged credit did not count');
  });

  it('another station\'s unicast frame (flooded by a switch) is filtered, neither taken nor counted', () => {
    const p = pair();
    p.s.schedule(2_000_000, () => p.b.netReceive(encodeBtFrame({ dst: C_MAC, src: A_MAC, type: BT_TYPE.DATA, stream: 1, seq: 1, value: 1024 }, pattern(0, 1024))));
    const { got, ends } = stream(p, 8 * 1024, 1024);
    assert.equal(ends.b, null);
    assert.deepEqual(got, pattern(0, 8 * 1024));
    assert.equal(p.b.counters.badFrames, 0);
  });

  it('a refused send waits for netReady and loses nothing', () => {
    const p = pair();
    let n = 0;
    let m = 0;
    p.wa.refuse = () => n++ % 3 === 1;
    p.wb.refuse = () => m++ % 4 === 2;
    const { got, ends } = stream(p, 50 * 1024 + 3, 1024);
    assert.equal(ends.a, null);
    assert.equal(ends.b, null);
    assert.ok(p.wa.refusals > 0 && p.wb.refusals > 0);
    assert.deepEqual(got, pattern(0, 50 * 1024 + 3));
  });

  it('streams run one frame per perFrameCpuNs of the CPU on each side', () => {
    const p = pair({ perFrameCpuNs: 1000 }, { perFrameCpuNs: 1000, windowFrames: 64, creditEveryFrames: 8 });
    stream(p, 200 * 1024, 1024);
    assert.equal(p.a.counters.cpuBusyPs, 200 * 1_000_000);
    assert.equal(p.b.counters.cpuBusyPs, 200 * 1_000_000);
    // Pipelined: about 200 CPU slots, plus the wire and the first credit.
    assert.ok(p.s.now() < 200 * 1_000_000 + 10 * WIRE_PS, `took ${p.s.now()} ps`);
  });

  it('an empty stream finishes at once on both sides', () => {
    const p = pair();
    const { ends } = stream(p, 0, 1024);
    assert.equal(ends.a, null);
    assert.equal(ends.b, null);
    assert.equal(p.wa.sent.length + p.wb.sent.length, 0);
  });

  it('two streams at once keep their bytes apart; a stream id in use is refused', () => {
    const p = pair();
    const got1 = new Uint8Array(10 * 1024);
    const got2 = new Uint8Array(7 * 512);
    const ends: (Error | null)[] = [];
    p.b.receive(1, A_MAC, got1.length, 1024, (o, d) => got1.set(d, o), (e) => ends.push(e));
    p.b.receive(2, A_MAC, got2.length, 512, (o, d) => got2.set(d, o), (e) => ends.push(e));
    p.a.send(1, B_MAC, got1.length, 1024, pattern, (e) => ends.push(e));
    p.a.send(2, B_MAC, got2.length, 512, (o, l) => pattern(o + 77, l), (e) => ends.push(e));
    assert.throws(
      () => p.a.send(1, B_MAC, 10, 10, pattern, () => {}),
      (e: unknown) => e instanceof DconnectError && e.code === 'BAD_OPTION',
    );
    p.s.run({ maxEvents: 1e6 });
    assert.deepEqual(ends, [null, null, null, null]);
    assert.deepEqual(got1, pattern(0, got1.length));
    assert.deepEqual(got2, pattern(77, got2.length));
  });
});

describe('ClientNode over Ethernet (MacPort, EthPort, cable)', () => {
  /** Two clients on a 10 GbE cable; returns the run's event count, end time and whether the bytes arrived. */
  function overEthernet(length: number, queueLimitBytes = 64 * 1024) {
    const s = new VirtualScheduler();
    const params = { rateBitsPerSec: 10e9, queueLimitBytes };
    const ea = new EthPort('a', s, params);
    const eb = new EthPort('b', s, params);
    new CableChannel(ea, eb, 50);
    const a = new ClientNode('a', s, { perFrameCpuNs: 50, windowFrames: 64, creditEveryFrames: 16 }, new MacPort(ea), A_MAC);
    const b = new ClientNode('b', s, { perFrameCpuNs: 50, windowFrames: 64, creditEveryFrames: 16 }, new MacPort(eb), B_MAC);
    const got = new Uint8Array(length);
    let ok = false;
    b.receive(4, A_MAC, length, 1024, (o, d) => got.set(d, o), (e) => (ok = e === null));
    a.send(4, B_MAC, length, 1024, pattern, (e) => assert.equal(e, null));
    s.run({ maxEvents: 1e7 });
    return { events: s.eventsExecuted, now: s.now(), ok, exact: sameBytes(got, pattern(0, length)), a, b, ea };
  }

  it('a stream crosses the cable byte-exact, paced by the line rate', () => {
    const r = overEthernet(1 << 20);
    assert.ok(r.ok);
    assert.ok(r.exact);
    assert.equal(r.ea.counters.drops, 0, 'the MAC refuses instead of dropping');
    // 1024 frames of 1024 + 30 B: at 10 Gb/s each takes (1054 + 8 + 4 + 4 + 12) x 0.8 ns.
    const wirePs = 1024 * (BT_FRAME_HEADER_BYTES + 1024 + 8 + 4 + 4 + 12) * 800;
    assert.ok(r.now >= wirePs, `no faster than the wire (${r.now} < ${wirePs})`);
    assert.ok(r.now < wirePs * 1.2, `and not much slower (${r.now} vs ${wirePs})`);
  });

  it('a small output buffer makes the MAC refuse, and the client waits for it: still byte-exact, nothing dropped', () => {
    const r = overEthernet(256 * 1024, 3000);
    assert.ok(r.ok);
    assert.ok(r.exact);
    assert.equal(r.ea.counters.drops, 0);
  });

  it('is deterministic: the same run twice gives the same event count and end time', () => {
    const x = overEthernet(512 * 1024);
    const y = overEthernet(512 * 1024);
    assert.equal(x.events, y.events);
    assert.equal(x.now, y.now);
    assert.deepEqual(x.a.counters, y.a.counters);
    assert.deepEqual(x.b.counters, y.b.counters);
  });
});
