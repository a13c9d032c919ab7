import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { VirtualScheduler } from '../../src/core/scheduler.js';
import { TraceRegistry } from '../../src/core/trace.js';
import { formatMac, Frame, JUMBO_MAX_PAYLOAD_BYTES, MAX_PAYLOAD_BYTES, wireBytes } from '../../src/ethernet/frame.js';
import { type BurstSplitter, CableChannel, EthPort, type FrameReceiver } from '../../src/ethernet/port.js';
import { EthSwitch } from '../../src/ethernet/switch.js';

const RATE = 10e9;
const PS_PER_BYTE = 800; // 10 Gb/s
const BIG_QUEUE = 1 << 20;

class Sink implements FrameReceiver {
  readonly got: { frame: Frame; t: number; port: EthPort }[] = [];
  constructor(private readonly s: VirtualScheduler) {}
  receiveFrame(frame: Frame, port: EthPort): void {
    this.got.push({ frame, t: this.s.now(), port });
  }
}

function frame(dst: number, src: number, payloadBytes: number, vlan = 1, tag = 0): Frame<number> {
  return new Frame(dst, src, vlan, 0x88b5, tag, payloadBytes);
}

describe('Ethernet frame wire size', () => {
  it('adds preamble 8, MAC header 14, VLAN tag 4, FCS 4 and inter-frame gap 12 to the padded payload', () => {
    assert.equal(wireBytes(42), 84);
    assert.equal(wireBytes(0), 84);
    assert.equal(wireBytes(1), 84);
    assert.equal(wireBytes(43), 85);
    assert.equal(wireBytes(100), 142);
    assert.equal(wireBytes(1500), 1542);
  });

  it('frames above 9000 B of payload (jumbo) are rejected; a port sends at most its MTU, 1500 B unless set', () => {
    assert.equal(MAX_PAYLOAD_BYTES, 1500);
    assert.equal(JUMBO_MAX_PAYLOAD_BYTES, 9000);
    assert.doesNotThrow(() => frame(1, 2, 9000));
    assert.throws(() => frame(1, 2, 9001), RangeError);
    const s = new VirtualScheduler();
    const std = new EthPort('std', s, { rateBitsPerSec: RATE, queueLimitBytes: BIG_QUEUE });
    const jumbo = new EthPort('jumbo', s, { rateBitsPerSec: RATE, queueLimitBytes: BIG_QUEUE, maxPayloadBytes: 9000 });
    const sink = new Sink(s);
    const far = new EthPort('far', s, { rateBitsPerSec: RATE, queueLimitBytes: BIG_QUEUE }, sink);
    new CableChannel(std, new EthPort('x', s, { rateBitsPerSec: RATE, queueLimitBytes: BIG_QUEUE }, sink), 0);
    new CableChannel(jumbo, far, 0);
    assert.equal(std.send(frame(1, 2, 1500)), true);
    assert.throws(() => std.send(frame(1, 2, 1501)), /exceeds the port's 1500 B/);
    assert.equal(jumbo.send(frame(1, 2, 9000)), true);
    s.run();
    assert.equal(sink.got.at(-1)!.t, wireBytes(9000) * PS_PER_BYTE); // 9042 B on the wire at 10 Gb/s
  });

  it('formats MACs as colon-separated hex', () => {
    assert.equal(formatMac(0x0060_b900_0001), '00:60:b9:00:00:01');
  });
});

describe('EthPort and CableChannel', () => {
  function pair(propagationNs = 25, queueLimitBytes = BIG_QUEUE) {
    const s = new VirtualScheduler();
    const trace = new TraceRegistry();
    const sa = new Sink(s);
    const sb = new Sink(s);
    const a = new EthPort('a', s, { rateBitsPerSec: RATE, queueLimitBytes }, sa, trace);
    const b = new EthPort('b', s, { rateBitsPerSec: RATE, queueLimitBytes }, sb, trace);
    const ch = new CableChannel(a, b, propagationNs);
    return { s, a, b, sa, sb, ch, trace };
  }

  it('arrival = serialization at 10 Gb/s + propagation', () => {
    const { s, a, sb } = pair(25);
    s.schedule(1000, () => assert.equal(a.send(frame(2, 1, 1500)), true));
    s.run();
    assert.equal(sb.got.length, 1);
    assert.equal(sb.got[0].t, 1000 + 1542 * PS_PER_BYTE + 25_000);
  });

  it('is full duplex: both directions serialize independently', () => {
    const { s, a, b, sa, sb } = pair(10);
    a.send(frame(2, 1, 1500));
    b.send(frame(1, 2, 1500));
    s.run();
    assert.equal(sa.got[0].t, 1542 * PS_PER_BYTE + 10_000);
    assert.equal(sb.got[0].t, 1542 * PS_PER_BYTE + 10_000);
  });

  it('back-to-back frames queue behind each other; delayPs defers the earliest start', () => {
    const { s, a, sb } = pair(0);
    a.send(frame(2, 1, 1500, 1, 1));
    a.send(frame(2, 1, 42, 1, 2));
    a.send(frame(2, 1, 100, 1, 3), 10_000_000); // starts no earlier than 10 us
    s.run();
    assert.deepEqual(
      sb.got.map((g) => [g.frame.payload, g.t]),
      [
        [1, 1542 * PS_PER_BYTE],
        [2, (1542 + 84) * PS_PER_BYTE],
        [3, 10_000_000 + 142 * PS_PER_BYTE],
      ],
    );
    assert.equal(a.counters.txFrames, 3);
    assert.equal(a.counters.txWireBytes, 1542 + 84 + 142);
    assert.equal(a.counters.txPayloadBytes, 1500 + 42 + 100);
    assert.equal(a.counters.busyPs, (1542 + 84 + 142) * PS_PER_BYTE);
  });

  it('queuedBytes reports the bytes still ahead of a new frame', () => {
    const { s, a } = pair(0);
    a.send(frame(2, 1, 1500));
    a.send(frame(2, 1, 1500));
    assert.equal(a.queuedBytes(), 2 * 1542);
    s.run({ untilPs: 1542 * PS_PER_BYTE });
    assert.equal(a.queuedBytes(), 1542);
  });

  it('drops a frame that does not fit the output buffer and counts it', () => {
    const { s, a, sb } = pair(0, 3 * 1542);
    const ok = Array.from({ length: 5 }, () => a.send(frame(2, 1, 1500)));
    assert.deepEqual(ok, [true, true, true, false, false]);
    assert.equal(a.counters.drops, 2);
    assert.equal(a.counters.maxQueuedBytes, 3 * 1542);
    assert.equal(a.hasRoom(1500), false);
    s.run();
    assert.equal(sb.got.length, 3);
    assert.equal(a.hasRoom(1500), true);
  });

  /** A splitter for plain test frames (the model's is expether/burst-frames.ts splitAtHits): runs keep their ready times. */
  const splitPlain: BurstSplitter = (f, isHit, clean) => {
    const n = f.parts!.length;
    let from = 0;
    const run = (a: number, b: number) => {
      const piece = new Frame(f.dst, f.src, f.vlan, f.etherType, f.payload, 0, f.parts!.slice(a, b));
      piece.readyPs = f.readyPs!.slice(a, b);
      clean(piece, a, b);
    };
    for (let i = 0; i < n; i++) {
      if (!isHit(i)) continue;
      if (i > from) run(from, i);
      from = i + 1;
    }
    if (from < n) run(from, n);
  };

  it('a burst of read requests counts the time its frames wait in the output buffer, as per-frame sends do (readQueuedPs)', () => {
    const ready = [0, 0, 100 * PS_PER_BYTE, 5000 * PS_PER_BYTE];
    const per = pair(0, BIG_QUEUE);
    per.a.send(frame(2, 1, 1500)); // a backlog ahead of the reads
    ready.forEach((t) =>
      per.s.schedule(t, () => {
        const f = frame(2, 1, 100);
        f.readRequest = true;
        per.a.send(f);
      }),
    );
    per.s.run();
    assert.ok(per.a.counters.readQueuedPs > 0);
    const b = pair(0, BIG_QUEUE);
    b.a.send(frame(2, 1, 1500));
    const burst = new Frame(2, 1, 1, 0x88b5, 0, 4 * 100, new Uint16Array(4).fill(100));
    burst.readyPs = Float64Array.from(ready);
    burst.readRequest = true;
    b.a.send(burst);
    b.s.run();
    assert.equal(b.a.counters.readQueuedPs, per.a.counters.readQueuedPs);
  });

  it('a burst meets the output buffer frame by frame, as per-frame does: the frames that overflow are dropped, the runs around them go on', () => {
    const limit = 2 * 1542;
    const ready = [0, 0, 0, 2 * 1542 * PS_PER_BYTE, 2 * 1542 * PS_PER_BYTE];
    // Per frame, for reference: each frame offered to the port at its ready time.
    const per = pair(0, limit);
    const sent: boolean[] = [];
    ready.forEach((t, i) => per.s.schedule(t, () => sent.push(per.a.send(frame(2, 1, 1500, 1, i)))));
    per.s.run();
    assert.deepEqual(sent, [true, true, false, true, true]);
    const b = pair(0, limit);
    b.a.splitBurst = splitPlain;
    const burst = new Frame(2, 1, 1, 0x88b5, 0, 5 * 1500, new Uint16Array(5).fill(1500));
    burst.readyPs = Float64Array.from(ready);
    assert.equal(b.a.send(burst), true);
    b.s.run();
    assert.equal(b.a.counters.drops, 1);
    assert.equal(b.a.counters.txFrames, 4);
    assert.ok(b.a.counters.maxQueuedBytes <= limit);
    assert.deepEqual(
      b.sb.got.map((g) => [...g.frame.readyPs!]),
      [per.sb.got.slice(0, 2).map((g) => g.t), per.sb.got.slice(2).map((g) => g.t)],
      'two runs, each frame at per-frame time',
    );
    // Without a splitter a partly dropped burst cannot go on: that is a wiring bug, said so.
    const c = pair(0, limit);
    const again = new Frame(2, 1, 1, 0x88b5, 0, 5 * 1500, new Uint16Array(5).fill(1500));
    again.readyPs = Float64Array.from(ready);
    assert.throws(() => c.a.send(again), /nothing splits the burst/);
  });

  it("admitBurst moves a bridge's frames to when each fits, as a bridge that waits for room would send them; roomInPs says when one fits", () => {
    const { a } = pair(0, 2 * 1542);
    const starts = new Float64Array(4);
    a.admitBurst(new Uint16Array(4).fill(1500), starts, 0);
    assert.deepEqual([...starts], [0, 0, 1542 * PS_PER_BYTE, 2 * 1542 * PS_PER_BYTE]);
    a.send(frame(2, 1, 1500));
    a.send(frame(2, 1, 1500));
    assert.equal(a.roomInPs(1500), 1542 * PS_PER_BYTE);
    assert.equal(a.roomInPs(42), 84 * PS_PER_BYTE, 'a small frame fits once the backlog leaves room for its 84 B');
    assert.equal(a.roomInPs(9000 + 1), Infinity, 'a frame larger than the buffer never fits');
  });

  it('frames that overtake one held back on the wire (a faulty cable reordering) each arrive at their own time, in time order', () => {
    const { s, a, sb, ch } = pair(0);
    // Carried straight onto the cable with chosen delays, as a faulty cable does: 1 held back far,
    // 2-4 overtaking it in their own order (the second FIFO), 5 overtaking 4 too (its own event), 6 after all.
    const delaysNs = [50, 10, 20, 30, 15, 60];
    s.schedule(0, () => delaysNs.forEach((d, i) => ch.carry(a, frame(2, 1, 64, 1, i + 1), d * 1000)));
    s.run();
    assert.deepEqual(
      sb.got.map((g) => [g.frame.payload, g.t]),
      [
        [2, 10_000],
        [5, 15_000],
        [3, 20_000],
        [4, 30_000],
        [1, 50_000],
        [6, 60_000],
      ],
    );
  });

  it('dropFilter loses frames on the wire and counts them', () => {
    const { s, a, sb, ch } = pair();
    ch.dropFilter = (f) => f.payload === 2;
    for (let i = 1; i <= 3; i++) a.send(frame(2, 1, 64, 1, i));
    s.run();
    assert.deepEqual(
      sb.got.map((g) => g.frame.payload),
      [1, 3],
    );
    assert.equal(ch.lostFrames, 1);
    assert.equal(a.counters.txFrames, 3, 'the sender still spent wire time on it');
  });

  it('propagation delay is rounded to whole ps; ports register trace counters', () => {
    const { s, a, sb, trace } = pair(0.0125);
    a.send(frame(2, 1, 42));
    s.run();
    assert.equal(sb.got[0].t, 84 * PS_PER_BYTE + 13);
    assert.equal(trace.read('eth.a').txFrames, 1);
  });

  it('sending on an unconnected port throws', () => {
    const s = new VirtualScheduler();
    const p = new EthPort('lonely', s, { rateBitsPerSec: RATE, queueLimitBytes: BIG_QUEUE });
    assert.throws(() => p.send(frame(1, 2, 64)), /not connected/);
  });
});

describe('EthSwitch', () => {
  const SW_LAT_NS = 500;
  const CABLE_NS = 25;

  function star(n: number, opts: { queueLimitBytes?: number; macTableEntries?: number } = {}) {
    const s = new VirtualScheduler();
    const sw = new EthSwitch('sw', s, { rateBitsPerSec: RATE, queueLimitBytes: opts.queueLimitBytes ?? BIG_QUEUE, latencyNs: SW_LAT_NS, ports: n, macTableEntries: opts.macTableEntries ?? 1024 });
    const hosts: { port: EthPort; sink: Sink; mac: number }[] = [];
    for (let i = 0; i < n; i++) {
      const sink = new Sink(s);
      const port = new EthPort(`h${i}`, s, { rateBitsPerSec: RATE, queueLimitBytes: BIG_QUEUE }, sink);
      new CableChannel(port, sw.ports[i], CABLE_NS);
      hosts.push({ port, sink, mac: 0x100 + i });
    }
    return { s, sw, hosts };
  }

  it('is store-and-forward: arrival = arrival at switch + latency + serialization + propagation', () => {
    const { s, sw, hosts } = star(3);
    // Teach the switch where host 1 is, so the test frame is unicast.
    hosts[1].port.send(frame(0xfff, hosts[1].mac, 42));
    s.run();
    const t0 = s.now();
    const ser = 1542 * PS_PER_BYTE;
    hosts[0].port.send(frame(hosts[1].mac, hosts[0].mac, 1500));
    s.run();
    const atSwitch = t0 + ser + CABLE_NS * 1000;
    const got = hosts[1].sink.got.filter((g) => g.frame.src === hosts[0].mac);
    assert.equal(got.length, 1);
    assert.equal(got[0].t, atSwitch + SW_LAT_NS * 1000 + ser + CABLE_NS * 1000);
    assert.equal(sw.counters.forwarded, 1);
    assert.equal(hosts[2].sink.got.length, 1, 'host 2 saw only the flooded learning frame');
  });

  it('floods a burst for an unlearnt MAC as its frames would: every other port gets it, at per-frame times', () => {
    // Per frame, for reference: three frames to an unknown MAC, flooded one by one.
    const per = star(3);
    for (let i = 0; i < 3; i++) per.hosts[0].port.send(frame(0x999, per.hosts[0].mac, 1000));
    per.s.run();
    // The same three as one burst (burst granularity): no learnt port for 0x999 either.
    const b = star(3);
    const burst = new Frame(0x999, b.hosts[0].mac, 1, 0x88b5, 0, 3000, Uint16Array.of(1000, 1000, 1000));
    burst.readyPs = new Float64Array(3);
    b.hosts[0].port.send(burst);
    b.s.run();
    assert.equal(b.sw.counters.flooded, 3);
    for (const h of [1, 2]) {
      const got = b.hosts[h].sink.got;
      assert.equal(got.length, 1, `host ${h} got the burst`);
      const last = per.hosts[h].sink.got.map((g) => g.t);
      assert.equal(got[0].t, last[last.length - 1], `host ${h}: the burst arrives with per-frame's last frame`);
      assert.deepEqual([...got[0].frame.readyPs!], last, `host ${h}: each frame at per-frame's time`);
    }
  });

  it('is cut-through when configured: last bit out = last bit in + latency (the latency counts from the first bit in)', () => {
    const rate = 100e9; // 80 ps per byte
    const latNs = 300;
    const run = (forwarding: 'cut-through' | 'store-and-forward', payloadBytes: number) => {
      const s = new VirtualScheduler();
      const sw = new EthSwitch('sw', s, { rateBitsPerSec: rate, queueLimitBytes: BIG_QUEUE, latencyNs: latNs, forwarding, ports: 2, macTableEntries: 16 });
      const sinks = [new Sink(s), new Sink(s)];
      const ports = sinks.map((k, i) => new EthPort(`h${i}`, s, { rateBitsPerSec: rate, queueLimitBytes: BIG_QUEUE }, k));
      ports.forEach((p, i) => new CableChannel(p, sw.ports[i], CABLE_NS));
      ports[1].send(frame(0xfff, 0x101, 42)); // teaches the switch where h1 is
      s.run();
      const t0 = s.now();
      ports[0].send(frame(0x101, 0x100, payloadBytes));
      s.run();
      return { t: sinks[1].got[0].t - t0, ser: Math.ceil(wireBytes(payloadBytes) * 80) };
    };
    for (const payload of [42, 300, 1500]) {
      const ct = run('cut-through', payload);
      const sf = run('store-and-forward', payload);
      const lastBitAtSwitch = ct.ser + CABLE_NS * 1000;
      assert.equal(ct.t, lastBitAtSwitch + latNs * 1000 + CABLE_NS * 1000, `cut-through, ${payload} B`);
      assert.equal(sf.t, lastBitAtSwitch + latNs * 1000 + sf.ser + CABLE_NS * 1000, `store-and-forward, ${payload} B`);
    }
  });

  it('cut-through with a latency shorter than the frame: the frame leaves once whole, never before', () => {
    const s = new VirtualScheduler();
    const sw = new EthSwitch('sw', s, { rateBitsPerSec: RATE, queueLimitBytes: BIG_QUEUE, latencyNs: 300, forwarding: 'cut-through', ports: 2, macTableEntries: 16 });
    const sinks = [new Sink(s), new Sink(s)];
    const ports = sinks.map((k, i) => new EthPort(`h${i}`, s, { rateBitsPerSec: RATE, queueLimitBytes: BIG_QUEUE }, k));
    ports.forEach((p, i) => new CableChannel(p, sw.ports[i], CABLE_NS));
    ports[1].send(frame(0xfff, 0x101, 42));
    s.run();
    const t0 = s.now();
    ports[0].send(frame(0x101, 0x100, 1500)); // 1542 B on the wire: 1234 ns at 10 Gb/s, more than 300 ns
    s.run();
    const ser = 1542 * PS_PER_BYTE;
    assert.equal(sinks[1].got[0].t - t0, ser + CABLE_NS * 1000 + ser + CABLE_NS * 1000);
  });

  it('floods a frame for an unknown MAC to every other port, then unicasts once the reply taught it', () => {
    const { s, sw, hosts } = star(4);
    const [h0, h1, h2, h3] = hosts;
    h0.port.send(frame(h2.mac, h0.mac, 64, 1, 1));
    s.run();
    assert.equal(sw.counters.flooded, 1);
    assert.deepEqual(
      hosts.map((h) => h.sink.got.length),
      [0, 1, 1, 1],
      'flooded to all ports but the ingress one',
    );
    // The reply goes to h0's learned port only.
    h2.port.send(frame(h0.mac, h2.mac, 64, 1, 2));
    s.run();
    assert.deepEqual(
      hosts.map((h) => h.sink.got.length),
      [1, 1, 1, 1],
    );
    assert.equal(sw.counters.forwarded, 1);
    // And now h0 -> h2 is unicast too.
    h0.port.send(frame(h2.mac, h0.mac, 64, 1, 3));
    s.run();
    assert.deepEqual(
      hosts.map((h) => h.sink.got.length),
      [1, 1, 2, 1],
    );
    assert.equal(sw.counters.flooded, 1);
    assert.equal(sw.counters.forwarded, 2);
    void h1;
    void h3;
  });

  it('a frame whose destination is on its ingress port is not sent back', () => {
    const { s, sw, hosts } = star(3);
    hosts[0].port.send(frame(0xeee, hosts[0].mac, 64));
    s.run();
    hosts[0].port.send(frame(hosts[0].mac, 0xabc, 64)); // destination learned on port 0
    s.run();
    assert.equal(hosts[0].sink.got.length, 0);
    assert.equal(sw.counters.forwarded, 0);
  });

  it('VLANs isolate access ports: frames of a VLAN reach only its members', () => {
    const { s, sw, hosts } = star(4);
    sw.setVlans(0, [10]);
    sw.setVlans(1, [10]);
    sw.setVlans(2, [20]);
    // port 3: trunk (every VLAN)
    hosts[0].port.send(frame(0xfff, hosts[0].mac, 64, 10));
    s.run();
    assert.deepEqual(
      hosts.map((h) => h.sink.got.length),
      [0, 1, 0, 1],
    );
    // A frame tagged with a VLAN its ingress port is not a member of is filtered.
    hosts[0].port.send(frame(0xfff, hosts[0].mac, 64, 20));
    s.run();
    assert.equal(sw.counters.filtered, 1);
    assert.deepEqual(
      hosts.map((h) => h.sink.got.length),
      [0, 1, 0, 1],
    );
    // Unicast to a learned MAC on another VLAN is filtered at egress.
    hosts[2].port.send(frame(0xfff, hosts[2].mac, 64, 20)); // learn h2 (VLAN 20)
    s.run();
    const before = hosts[2].sink.got.length;
    hosts[0].port.send(frame(hosts[2].mac, hosts[0].mac, 64, 10));
    s.run();
    assert.equal(hosts[2].sink.got.length, before);
    assert.equal(sw.counters.filtered, 2);
  });

  it('a burst larger than the output buffer into one port drops frames and counts drops', () => {
    const limit = 8 * 1542 + 1000; // room for 8 full frames plus the forwarding pipeline
    const { s, sw, hosts } = star(4, { queueLimitBytes: limit });
    const dst = hosts[3];
    dst.port.send(frame(0xfff, dst.mac, 42)); // learn
    s.run();
    // Three senders each burst 10 full frames at once: 30 frames converge on one 10 Gb/s port.
    for (let h = 0; h < 3; h++) for (let i = 0; i < 10; i++) hosts[h].port.send(frame(dst.mac, hosts[h].mac, 1500, 1, h * 100 + i));
    s.run();
    const delivered = dst.sink.got.length;
    const outPort = sw.ports[3];
    assert.ok(outPort.counters.drops > 0, 'the congested output port drops');
    assert.equal(sw.counters.drops, outPort.counters.drops);
    assert.equal(delivered + outPort.counters.drops, 30);
    assert.ok(outPort.counters.maxQueuedBytes <= limit);
    assert.equal(outPort.counters.txFrames, delivered);
    // Nothing else is dropped in an uncongested direction.
    for (let i = 0; i < 3; i++) assert.equal(sw.ports[i].counters.drops, 0);
  });

  it('the forwarding latency does not consume output buffer space', () => {
    // Output buffer of exactly two full frames; two frames arrive together from two hosts.
    const { s, sw, hosts } = star(3, { queueLimitBytes: 2 * 1542 });
    const dst = hosts[2];
    dst.port.send(frame(0xfff, dst.mac, 42));
    s.run();
    hosts[0].port.send(frame(dst.mac, hosts[0].mac, 1500));
    hosts[1].port.send(frame(dst.mac, hosts[1].mac, 1500));
    s.run();
    assert.equal(sw.counters.drops, 0);
    assert.equal(dst.sink.got.length, 2);
  });

  it('MAC learning stops when the table is full; unknown destinations then flood', () => {
    const { s, sw, hosts } = star(3, { macTableEntries: 1 });
    hosts[0].port.send(frame(0xfff, hosts[0].mac, 64)); // learned (table now full)
    s.run();
    hosts[1].port.send(frame(0xfff, hosts[1].mac, 64)); // not learned
    s.run();
    const flooded = sw.counters.flooded;
    hosts[0].port.send(frame(hosts[1].mac, hosts[0].mac, 64));
    s.run();
    assert.equal(sw.counters.flooded, flooded + 1);
    assert.equal(hosts[2].sink.got.length, 3);
  });
});
