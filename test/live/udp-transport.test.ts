import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { RngFactory, RngStream } from '../../src/core/rng.js';
import { VirtualScheduler } from '../../src/core/scheduler.js';
import { Frame } from '../../src/ethernet/frame.js';
import { EthPort, type EthPortParams, type FrameReceiver } from '../../src/ethernet/port.js';
import { encodeExpEtherFrame } from '../../src/expether/pdu-codec.js';
import { EXPETHER_ETHERTYPE, ExpEtherPdu } from '../../src/expether/pdu.js';
import { ReplayWindow, REPLAY_WINDOW, senderKey, writeTag } from '../../src/live/datagram-auth.js';
import { encodeDatagram, MAX_DATAGRAM_BYTES, UdpTransport, type InjectableScheduler, type UdpTransportOptions } from '../../src/live/udp-transport.js';
import { Tlp } from '../../src/pcie/tlp.js';
import { drawFault, type FaultKind, type FaultSpec } from '../../src/runtime/faults.js';

/** Virtual time; input runs at once (inject schedules it now and runs the queue), so delivery order is arrival order. */
class TestScheduler extends VirtualScheduler implements InjectableScheduler {
  inject(fn: () => void): void {
    this.schedule(0, fn);
    this.run();
  }
}

class Sink implements FrameReceiver {
  got: Frame<ExpEtherPdu>[] = [];
  receiveFrame(frame: Frame): void {
    this.got.push(frame as Frame<ExpEtherPdu>);
  }
  seqs(): number[] {
    return this.got.map((f) => f.payload.seq);
  }
}

const PORT = { rateBitsPerSec: 10e9, queueLimitBytes: 1 << 20 };
const LOOPBACK = { host: '127.0.0.1', port: 0 };
/** The fabric key of the tests' nodes. */
const KEY = new Uint8Array(32).map((_, i) => i * 11 + 3);
/**
 * Counters of the datagrams the tests craft: each new, and ahead of the real nodes' (which start at the
 * wall clock in microseconds, datagram-auth.ts), so a crafted one is never taken for a replay.
 */
let crafted = Date.now() * 1000 + 1e9;

function pduFrame(p: ExpEtherPdu): Frame {
  const f = new Frame(0x0060_b900_0100, 0x0060_b900_0001, 1, EXPETHER_ETHERTYPE, p, p.payloadBytes());
  f.readRequest = p.tlp?.kind === 'MRd';
  return f;
}

/** Frame i: a write whose sequence number is i (what the tests follow) and whose data and size vary with i. */
function frame(i: number): Frame {
  const data = new Uint8Array(64 * (1 + (i % 4))).map((_, k) => (i * 7 + k) & 0xff);
  return pduFrame(new ExpEtherPdu('tlp', i, -1, Tlp.memWrite(0x0300, 0x1_0000 + i * 256, data, i & 0xff), null));
}

/** A write of 4 KiB in one frame (a 4120-byte payload): only a port with jumbo frames carries it. */
function jumbo(i: number): Frame {
  const data = new Uint8Array(4096).map((_, k) => (i * 5 + k) & 0xff);
  return pduFrame(new ExpEtherPdu('tlp', i, -1, Tlp.memWrite(0x0300, 0x2_0000 + i * 4096, data, i & 0xff), null));
}

/** Every kind of PDU, for byte-exactness. */
function mixedFrames(): Frame[] {
  const out: Frame[] = [];
  for (let i = 0; i < 10; i++) {
    out.push(frame(i));
    out.push(pduFrame(new ExpEtherPdu('tlp', 100 + i, i, Tlp.memRead(0x0400, i, 0x8000 + i * 512, 512), null)));
    out.push(pduFrame(new ExpEtherPdu('ack', -1, i, null, null)));
    out.push(pduFrame(new ExpEtherPdu('routes', 200 + i, 7, null, [{ mac: 0x0060_b900_0100 + i, secondaryBus: 3, subordinateBus: 3, memBase: 0xe000_0000, memLimit: 0xe00f_ffff }])));
  }
  return out;
}

/** Waits (polling) until `cond` holds; fails after 5 s naming what it waited for. Bounds every test's time. */
async function waitFor(cond: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 5000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A node: its transport, scheduler and one port (plus sink) per cable. */
interface Node {
  t: UdpTransport;
  s: TestScheduler;
  ports: EthPort[];
  sinks: Sink[];
}

const CABLES = [
  { id: 1, name: 'host' },
  { id: 2, name: 'sw0-sw1' },
];

async function node(o: Partial<UdpTransportOptions> & { node: string; role: 'host' | 'box' }, remote: string, port: EthPortParams = PORT): Promise<Node> {
  const t = await UdpTransport.open({ bind: LOOPBACK, epoch: 1, key: KEY, ...o });
  const s = new TestScheduler();
  const sinks = CABLES.map(() => new Sink());
  const ports = CABLES.map((c, i) => new EthPort(`${o.node}.${c.name}`, s, port, sinks[i]));
  CABLES.forEach((c, i) => t.attach(c, ports[i], remote, 25, s));
  return { t, s, ports, sinks };
}

/** A host and a box on loopback, the host told the box's address; closed after `body` whatever happens. */
async function withPair(o: { host?: Partial<UdpTransportOptions>; box?: Partial<UdpTransportOptions>; port?: EthPortParams }, body: (host: Node, box: Node) => Promise<void>): Promise<void> {
  const host = await node({ node: 'host', role: 'host', ...o.host }, 'box0', o.port);
  const box = await node({ node: 'box0', role: 'box', ...o.box }, 'host', o.port).catch(async (e) => {
    await host.t.close();
    throw e;
  });
  try {
    host.t.setPeer('box0', box.t.address());
    await body(host, box);
  } finally {
    await host.t.close();
    await box.t.close();
  }
}

function send(n: Node, cable: number, frames: Frame[]): void {
  for (const f of frames) assert.ok(n.ports[cable].send(f));
  n.s.run();
}

/** A plain socket sending raw datagrams (a hostile or broken peer). */
async function rawSocket(): Promise<{ sock: dgram.Socket; send: (to: UdpTransport, b: Uint8Array) => void }> {
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  return { sock, send: (to, b) => sock.send(b, to.address().port, '127.0.0.1') };
}

const rates = (r: Partial<Record<FaultKind, number>>): Record<FaultKind, number> => ({ loss: 0, corrupt: 0, dup: 0, reorder: 0, ...r });

/** What a cable with these rates and seed delivers of frames 0..n-1, in order: the transport's fault rules, computed apart. */
function expectedDelivery(r: Record<FaultKind, number>, seed: number, cable: string, n: number): number[] {
  const rng = new RngFactory(seed).stream(`udp-fault:${cable}`);
  const out: number[] = [];
  let held: number | null = null;
  const emit = (i: number) => {
    out.push(i);
    if (held !== null) out.push(held);
    held = null;
  };
  for (let i = 0; i < n; i++) {
    const f = drawFault(r, rng.nextFloat());
    if (f === 'lost') continue;
    if (f === 'corrupted') emit(-1); // sent, so a held datagram follows it, then dropped at the receiver
    else if (f === 'duplicated') {
      emit(i);
      emit(i);
    } else if (f === 'reordered') {
      if (held !== null) out.push(held);
      held = i;
    } else emit(i);
  }
  if (held !== null) out.push(held);
  return out.filter((i) => i >= 0);
}

/** A datagram of one record: `frame` on cable `cable`, in session `epoch`, authentic from `sender` (by default the host, to a box). */
const one = (cable: number, epoch: number, frame: Uint8Array, sender = 'host') => encodeDatagram(epoch, [{ cable, frame }], { key: senderKey(KEY, sender), counter: crafted++ });

/** `dg` with a new counter and its tag made right again after a change (what a sender holding the key could send). */
function resealed(dg: Uint8Array, sender = 'host'): Uint8Array {
  const out = dg.slice();
  const end = out.length - 16;
  const counter = crafted++;
  new DataView(out.buffer).setUint32(16, Math.floor(counter / 2 ** 32));
  new DataView(out.buffer).setUint32(20, counter >>> 0);
  writeTag(senderKey(KEY, sender), out.subarray(12, 24), out.subarray(0, end), out, end);
  return out;
}

describe('UdpTransport (live mode): crossing cables as UDP datagrams', () => {
  it('delivers frames byte-identical and in order both ways; the box learns the host address from what it hears', async () => {
    await withPair({}, async (host, box) => {
      // The box does not know the host yet: its frame is dropped and counted.
      send(box, 0, [frame(0)]);
      assert.equal(box.t.counters.sendErrors, 1);
      assert.equal(box.t.lastHeardMs('host'), null);

      const sent = mixedFrames();
      const bytes = sent.map((f) => encodeExpEtherFrame(f));
      send(host, 0, sent);
      // The sender's objects change after sending (a retransmission buffer reused): the datagrams were made already.
      (sent[0].payload as ExpEtherPdu).tlp!.data!.fill(0xee);
      await waitFor(() => box.sinks[0].got.length === sent.length, `${sent.length} frames at the box`);
      assert.deepEqual(
        box.sinks[0].got.map((f) => [...encodeExpEtherFrame(f)]),
        bytes.map((b) => [...b]),
      );
      assert.equal(host.t.counters.framesSent, sent.length);
      assert.equal(box.t.counters.framesReceived, sent.length);
      assert.equal(box.t.counters.bytesReceived, host.t.counters.bytesSent);
      assert.ok(host.t.counters.datagramsSent < sent.length, `frames of one turn leave batched: ${host.t.counters.datagramsSent} datagrams for ${sent.length} frames`);
      assert.ok(box.t.lastHeardMs('host') !== null);

      const back = Array.from({ length: 30 }, (_, i) => frame(i));
      send(box, 0, back);
      await waitFor(() => host.sinks[0].got.length === back.length, 'the frames back at the host');
      assert.deepEqual(host.sinks[0].seqs(), back.map((_, i) => i));
      assert.equal(box.t.address().host, '127.0.0.1');
      assert.ok(box.t.address().port > 0);
      for (const n of [host, box]) {
        const c = n.t.counters;
        assert.equal(c.badDatagrams + c.crcErrors + c.authFailures + c.replays + c.fcsErrors + c.staleEpoch + c.unknownCable + c.otherErrors, 0);
      }
    });
  });

  it('carries jumbo frames between ports whose MTU allows them (ethernet.maxPayloadBytes 9000), byte-exact', async () => {
    await withPair({ port: { ...PORT, maxPayloadBytes: 9000 } }, async (host, box) => {
      const frames = [0, 1, 2, 3].map(jumbo);
      send(host, 0, frames);
      await waitFor(() => box.sinks[0].got.length === frames.length, 'the jumbo frames');
      assert.deepEqual(box.sinks[0].got.map((f) => Buffer.from(encodeExpEtherFrame(f)).toString('hex')), frames.map((f) => Buffer.from(encodeExpEtherFrame(f)).toString('hex')));
      assert.equal(box.t.counters.badDatagrams, 0);
    });
  });

  it('packs the frames of a turn into trains of at most MAX_DATAGRAM_BYTES, each frame whole in one', async () => {
    await withPair({ port: { ...PORT, maxPayloadBytes: 9000 } }, async (host) => {
      const raw = await rawSocket();
      try {
        const sizes: number[] = [];
        raw.sock.on('message', (m) => sizes.push(m.length));
        host.t.setPeer('box0', { host: '127.0.0.1', port: raw.sock.address().port });
        const frames = Array.from({ length: 40 }, (_, i) => jumbo(i)); // 40 x ~4.2 KiB: more than two trains
        send(host, 0, frames);
        await waitFor(() => sizes.length === host.t.counters.datagramsSent && host.t.counters.framesSent === frames.length, 'the trains');
        assert.ok(sizes.every((n) => n <= MAX_DATAGRAM_BYTES), `datagrams of ${sizes.join(', ')} bytes`);
        const recordBytes = frames.reduce((n, f) => n + 6 + encodeExpEtherFrame(f).length, 0);
        assert.equal(sizes.length, Math.ceil(recordBytes / (MAX_DATAGRAM_BYTES - 40)), 'as few trains as fit');
        assert.equal(sizes.reduce((a, b) => a + b, 0), recordBytes + 40 * sizes.length, 'a 24-byte header and a 16-byte tag each');
      } finally {
        raw.sock.close();
      }
    });
  });

  it('delivers frames no faster than the cable\'s line rate: a train\'s frames arrive one serialization after another', async () => {
    await withPair({}, async (host, box) => {
      // When each frame reached the box's port, in the box's simulated time.
      const at: number[] = [];
      const sink = box.sinks[0];
      const got = sink.receiveFrame.bind(sink);
      sink.receiveFrame = (f: Frame) => {
        at.push(box.s.now());
        got(f);
      };
      const frames = Array.from({ length: 20 }, (_, i) => frame(i));
      send(host, 0, frames); // one turn: one train, so all reach the box in one datagram
      await waitFor(() => sink.got.length === frames.length, 'the frames');
      assert.deepEqual(sink.seqs(), frames.map((_, i) => i));
      const port = box.ports[0];
      for (let i = 1; i < at.length; i++) {
        const gap = at[i] - at[i - 1];
        assert.ok(gap >= port.serializationPs(frames[i].payloadBytes), `frame ${i} arrived ${gap} ps after frame ${i - 1}, less than its ${port.serializationPs(frames[i].payloadBytes)} ps on a 10 Gb/s wire`);
      }
    });
  });

  it('drops and counts broken and hostile datagrams without throwing, and still delivers good ones', async () => {
    await withPair({}, async (_host, box) => {
      const raw = await rawSocket();
      try {
        const good = encodeExpEtherFrame(frame(5));
        const c = box.t.counters;
        const mutate = (b: Uint8Array, i: number, x: number) => {
          const copy = b.slice();
          copy[i] ^= x;
          return copy;
        };
        const dg = one(1, 1, good);
        const cases: Array<[Uint8Array, keyof typeof c]> = [
          [new Uint8Array(5), 'badDatagrams'], // shorter than header and CRC
          [new Uint8Array(0), 'badDatagrams'],
          [mutate(dg, 0, 0xff), 'badDatagrams'], // magic
          [mutate(dg, 4, 0x02), 'badDatagrams'], // version
          [new Uint8Array(9100), 'badDatagrams'], // longer than any frame, jumbo ones included
          [one(1, 1, encodeExpEtherFrame(jumbo(6))), 'badDatagrams'], // a good jumbo frame, but the port's MTU is 1500
          [mutate(dg, 24 + 40, 0x10), 'authFailures'], // a bit of the frame
          [mutate(dg, dg.length - 1, 0x01), 'authFailures'], // a bit of the tag
          [encodeDatagram(1, [{ cable: 1, frame: good }]), 'authFailures'], // keyless: a CRC where the tag goes
          [resealed(mutate(encodeDatagram(1, [{ cable: 1, frame: good, fcs: true }]), 24 + 6 + 40, 0x10)), 'fcsErrors'], // a frame with its own FCS, corrupted before the datagram's tag
          [one(9, 1, good), 'unknownCable'],
          [one(1, 1, new Uint8Array(40).fill(0xab)), 'badDatagrams'], // right FCS, not a frame: BAD_PDU
          [one(1, 1, good.subarray(0, good.length - 3)), 'badDatagrams'], // a truncated frame
          [one(1, 0, good), 'staleEpoch'], // an older session
          [resealed(mutate(dg, 24, 0x02)), 'badDatagrams'], // a record whose length runs past the end
          [resealed(mutate(dg, 24 + 5, 0x04)), 'badDatagrams'], // a record header shorter than its fields
          [resealed(Uint8Array.from([...dg.subarray(0, 6), 0, 0, ...dg.subarray(8)])), 'badDatagrams'], // no records, bytes after them
        ];
        const want: Record<string, number> = {};
        for (const [b, counter] of cases) {
          raw.send(box.t, b);
          want[counter] = (want[counter] ?? 0) + 1;
        }
        // Random garbage, some of it with a valid header and FCS around random bytes.
        const rng = new RngStream(99);
        for (let i = 0; i < 200; i++) {
          const b = new Uint8Array(Math.floor(rng.uniform(0, 1600)));
          rng.fillBytes(b);
          raw.send(box.t, i % 2 ? b : one(1, 1, b));
        }
        raw.send(box.t, dg);
        const total = cases.length + 201;
        await waitFor(() => c.datagramsReceived === total, `${total} datagrams at the box`);
        await waitFor(() => box.sinks[0].got.length >= 1, 'the good frame');
        for (const [k, n] of Object.entries(want)) assert.ok(c[k] >= n, `${k}: ${c[k]} < ${n}`);
        assert.equal(c.badDatagrams + c.authFailures + c.fcsErrors + c.unknownCable + c.staleEpoch + box.sinks[0].got.length, total);
        assert.equal(c.otherErrors, 0);
        assert.deepEqual(box.sinks[0].seqs().at(-1), 5);
        // The box answers whoever sent the good datagram.
        assert.ok(box.t.lastHeardMs('host') !== null);
      } finally {
        raw.sock.close();
      }
    });
  });

  it('a keepalive tells the host which box is alive, its incarnation and state, and never reaches the model', async () => {
    const heard: [string, number, number][] = [];
    await withPair({ host: { onKeepalive: (n, inc, st) => heard.push([n, inc, st]) } }, async (host, box) => {
      host.t.setPeer('box0', box.t.address());
      send(host, 0, [frame(1)]); // the box learns the host's address from it
      await waitFor(() => box.sinks[0].got.length === 1, 'the first frame');
      box.t.sendKeepalive(0xdeadbeef, 1);
      await waitFor(() => heard.length === 1, 'a keepalive');
      assert.deepEqual(heard[0], ['box0', 0xdeadbeef, 1]);
      assert.equal(host.t.counters.keepalivesReceived, 1);
      assert.ok(host.t.lastHeardMs('box0') !== null);
      assert.equal(host.sinks[0].got.length + host.sinks[1].got.length, 0, 'no frame delivered');
    });
  });

  it('the host drops datagrams of any other epoch than its own', async () => {
    await withPair({ host: { epoch: 2 } }, async (host) => {
      const raw = await rawSocket();
      try {
        const good = encodeExpEtherFrame(frame(1));
        raw.send(host.t, one(1, 1, good, 'box0'));
        raw.send(host.t, one(1, 3, good, 'box0'));
        raw.send(host.t, one(1, 2, good, 'box0'));
        await waitFor(() => host.t.counters.datagramsReceived === 3, 'three datagrams at the host');
        await waitFor(() => host.sinks[0].got.length === 1, 'the current-epoch frame');
        assert.equal(host.t.counters.staleEpoch, 2);
        assert.equal(host.t.epoch, 2);
      } finally {
        raw.sock.close();
      }
    });
  });

  it('a box adopts a greater epoch: onNewEpoch runs before delivery, re-attached cables get the frames, the old ones send nothing', async () => {
    const events: string[] = [];
    let box!: Node;
    const rebuilt = new Sink();
    const onNewEpoch = (e: number) => {
      events.push(`epoch ${e} (box at ${box.t.epoch}, ${rebuilt.got.length} delivered)`);
      // The box rebuilds its model: a new port for cable 1.
      const port = new EthPort('box0.rebuilt', box.s, PORT, rebuilt);
      box.t.attach(CABLES[0], port, 'host', 25, box.s);
      box.ports[0] = port;
    };
    await withPair({ host: { epoch: 5 }, box: { epoch: 1, onNewEpoch } }, async (host, b) => {
      box = b;
      const oldPort = box.ports[0];
      send(host, 0, [frame(0), frame(1), frame(2)]);
      await waitFor(() => rebuilt.got.length === 3, 'three frames at the rebuilt port');
      assert.deepEqual(events, ['epoch 5 (box at 5, 0 delivered)']);
      assert.deepEqual(box.sinks[0].got, []);
      assert.equal(box.t.epoch, 5);

      // The replaced attachment's frames never leave.
      const sentBefore = box.t.counters.datagramsSent;
      oldPort.send(frame(99));
      box.s.run();
      assert.equal(box.t.counters.datagramsSent, sentBefore);

      // The box answers with the session's epoch, so the host takes it.
      send(box, 0, [frame(10), frame(11)]);
      await waitFor(() => host.sinks[0].got.length === 2, 'the box answer');
      assert.equal(host.t.counters.staleEpoch, 0);

      // A newer session again; then a datagram of the old one is stale at the box.
      host.t.setEpoch(6);
      send(host, 0, [frame(3)]);
      await waitFor(() => rebuilt.got.length === 4 && events.length === 2, 'the frame of epoch 6 at the port rebuilt again');
      assert.match(events[1], /^epoch 6 /);
      const raw = await rawSocket();
      try {
        raw.send(box.t, one(1, 5, encodeExpEtherFrame(frame(4))));
        await waitFor(() => box.t.counters.staleEpoch === 1, 'the stale datagram counted');
      } finally {
        raw.sock.close();
      }
      assert.equal(events.length, 2);
      assert.throws(() => host.t.setEpoch(2 ** 32), RangeError);
    });
  });

  it('loss: lost frames are counted and never sent; other cables are unaffected', async () => {
    const faults: FaultSpec[] = [{ rates: rates({ loss: 1 }), downs: [], bufferBytes: null, link: 'host' }];
    await withPair({ host: { faults, seed: 1 } }, async (host, box) => {
      send(host, 0, Array.from({ length: 20 }, (_, i) => frame(i)));
      send(host, 1, [frame(100)]); // a marker on a cable without faults, sent after them
      await waitFor(() => box.sinks[1].got.length === 1, 'the marker');
      assert.equal(box.sinks[0].got.length, 0);
      assert.equal(host.t.counters.lost, 20);
      assert.equal(host.t.counters.framesSent, 1);
    });
  });

  it('corrupt: the datagrams are sent with a flipped bit and the receiver drops them on the FCS', async () => {
    const faults: FaultSpec[] = [{ rates: rates({ loss: 0.5 }), downs: [], bufferBytes: null, link: null }, { rates: rates({ corrupt: 1 }), downs: [], bufferBytes: null, link: 'host' }]; // the last matching spec wins
    await withPair({ host: { faults, seed: 1 } }, async (host, box) => {
      send(host, 0, Array.from({ length: 20 }, (_, i) => frame(i)));
      await waitFor(() => box.t.counters.fcsErrors === 20, '20 FCS errors');
      assert.equal(host.t.counters.corrupted, 20);
      assert.equal(host.t.counters.lost, 0);
      assert.equal(box.sinks[0].got.length, 0);
    });
  });

  it('dup delivers every frame twice', async () => {
    await withPair({ host: { faults: [{ rates: rates({ dup: 1 }), downs: [], bufferBytes: null, link: null }] } }, async (host, box) => {
      send(host, 0, Array.from({ length: 10 }, (_, i) => frame(i)));
      await waitFor(() => box.sinks[0].got.length === 20, '20 frames');
      assert.deepEqual(box.sinks[0].seqs(), Array.from({ length: 20 }, (_, i) => i >> 1));
      assert.equal(host.t.counters.duplicated, 10);
      assert.equal(host.t.counters.framesSent, 20);
    });
  });

  it('reorder lets the next datagram overtake; the same seed makes the same decisions, a held last one still leaves', async () => {
    const r = rates({ loss: 0.1, corrupt: 0.1, dup: 0.1, reorder: 0.2 });
    const N = 200;
    const run = async (seed: number) => {
      let out: { seqs: number[]; counters: Record<string, number> } | null = null;
      await withPair({ host: { faults: [{ rates: r, downs: [], bufferBytes: null, link: 'host' }], seed } }, async (host, box) => {
        send(host, 0, Array.from({ length: N }, (_, i) => frame(i)));
        const want = expectedDelivery(r, seed, 'host', N);
        await waitFor(() => box.sinks[0].got.length === want.length && box.t.counters.fcsErrors === host.t.counters.corrupted, `${want.length} frames`);
        const { lost, corrupted, duplicated, reordered } = host.t.counters;
        out = { seqs: box.sinks[0].seqs(), counters: { lost, corrupted, duplicated, reordered } };
        assert.deepEqual(out.seqs, want);
      });
      return out!;
    };
    const a = await run(42);
    const b = await run(42);
    const c = await run(43);
    assert.deepEqual(b, a);
    assert.notDeepEqual(c.seqs, a.seqs);
    assert.ok(a.counters.reordered > 0 && a.counters.lost > 0 && a.counters.corrupted > 0 && a.counters.duplicated > 0);
    assert.ok(a.seqs.some((s, i) => i > 0 && s < a.seqs[i - 1]), 'some frame arrived after a later one');
    // Whatever the draw order, every frame neither lost nor corrupted arrives at least once.
    const gone = N - a.counters.lost - a.counters.corrupted;
    assert.equal(new Set(a.seqs).size, gone);
  });

  it('a forged datagram (right magic, a CRC or a tag under another key) with a huge epoch changes nothing, is counted and gets no reply', async () => {
    const epochs: number[] = [];
    await withPair({ box: { onNewEpoch: (e) => epochs.push(e) } }, async (_host, box) => {
      const raw = await rawSocket();
      try {
        const replies: Buffer[] = [];
        raw.sock.on('message', (m) => replies.push(m));
        const good = encodeExpEtherFrame(frame(1));
        const wrongKey = senderKey(new Uint8Array(32).fill(7), 'host');
        raw.send(box.t, encodeDatagram(0xffff_ffff, [{ cable: 1, frame: good }])); // keyless, as before issue 20
        raw.send(box.t, encodeDatagram(0xffff_ffff, [{ cable: 1, frame: good }], { key: wrongKey, counter: crafted++ }));
        raw.send(box.t, encodeDatagram(0xffff_ffff, [{ cable: 1, frame: good }], { key: senderKey(KEY, 'box0'), counter: crafted++ })); // the box's own key: a reflection
        const c = box.t.counters;
        await waitFor(() => c.datagramsReceived === 3, 'three datagrams at the box');
        assert.equal(c.authFailures, 3);
        assert.equal(box.t.epoch, 1, 'the epoch stays');
        assert.deepEqual(epochs, [], 'no rebuild');
        assert.equal(box.t.lastHeardMs('host'), null, 'no liveness, no peer learned');
        assert.equal(box.sinks[0].got.length, 0);
        box.t.sendKeepalive(1, 0); // the box knows no peer: nothing leaves, not even toward the forger
        send(box, 0, [frame(2)]);
        await new Promise((r) => setImmediate(r));
        assert.equal(c.datagramsSent, 0, 'no reply of any kind');
        assert.deepEqual(replies, []);
      } finally {
        raw.sock.close();
      }
    });
  });

  it('a replayed datagram is dropped and counted, whoever resends it, and does not re-point the peer; a fresh authentic one from a new address does', async () => {
    await withPair({}, async (host, box) => {
      const tap = await rawSocket(); // where the host's datagrams go first: a capture
      const other = await rawSocket(); // another sender
      try {
        const captured: Uint8Array[] = [];
        tap.sock.on('message', (m) => captured.push(new Uint8Array(m)));
        const toTap: Buffer[] = [];
        host.t.setPeer('box0', { host: '127.0.0.1', port: tap.sock.address().port });
        send(host, 0, [frame(1)]);
        await waitFor(() => captured.length === 1, 'the captured datagram');
        // The tap relays it: authentic and new, so the box takes it and answers the tap.
        tap.send(box.t, captured[0]);
        await waitFor(() => box.sinks[0].got.length === 1, 'the relayed frame');
        tap.sock.removeAllListeners('message');
        tap.sock.on('message', (m) => toTap.push(m));
        // Replays, from the tap and from another address: dropped, counted, nothing delivered.
        tap.send(box.t, captured[0]);
        other.send(box.t, captured[0]);
        const c = box.t.counters;
        await waitFor(() => c.replays === 2, 'two replays counted');
        assert.equal(box.sinks[0].got.length, 1);
        // The box still answers the tap, not the other sender.
        send(box, 0, [frame(2)]);
        await waitFor(() => toTap.length === 1, "the box's answer at the tap");
        // A fresh authentic datagram from the other address re-points the peer (a restarted host).
        other.send(box.t, one(1, 1, encodeExpEtherFrame(frame(3))));
        await waitFor(() => box.sinks[0].got.length === 2, 'the fresh frame');
        const atOther: Buffer[] = [];
        other.sock.on('message', (m) => atOther.push(m));
        send(box, 0, [frame(4)]);
        await waitFor(() => atOther.length === 1, "the box's answer at the new address");
        assert.equal(c.authFailures, 0);
      } finally {
        tap.sock.close();
        other.sock.close();
      }
    });
  });

  it('a datagram whose records name two senders is refused record by record; an older epoch from the right key is stale, not adopted', async () => {
    await withPair({}, async (host, box) => {
      const raw = await rawSocket();
      try {
        // Cable 1 leads to the host at the box: a record of an unknown cable after it is counted, the first delivered.
        raw.send(box.t, encodeDatagram(1, [{ cable: 1, frame: encodeExpEtherFrame(frame(1)) }, { cable: 9, frame: encodeExpEtherFrame(frame(2)) }], { key: senderKey(KEY, 'host'), counter: crafted++ }));
        await waitFor(() => box.sinks[0].got.length === 1 && box.t.counters.unknownCable === 1, 'one frame delivered, one refused');
        assert.equal(host.t.counters.authFailures, 0);
      } finally {
        raw.sock.close();
      }
    });
  });

  it('the replay window accepts each counter once, out of order within REPLAY_WINDOW, nothing older', () => {
    const w = new ReplayWindow();
    const take = (n: number) => {
      const ok = w.check(n);
      if (ok) w.accept(n);
      return ok;
    };
    assert.ok(take(5000));
    assert.ok(!take(5000), 'a duplicate');
    assert.ok(take(4990), 'an older one not seen, within the window');
    assert.ok(!take(4990));
    assert.ok(take(5000 + REPLAY_WINDOW), 'far ahead');
    assert.ok(!take(5000), 'now outside the window');
    assert.ok(take(5001 + 1), 'inside the new window, not seen');
    assert.ok(!take(1), 'long gone');
    // check() alone moves nothing: a forged counter must not.
    assert.ok(w.check(1e15));
    assert.ok(w.check(5003));
  });
});
