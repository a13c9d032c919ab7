import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EthernetNic, type NicParams } from '../../src/devices/nic/ethernet-nic.js';
import {
  CTRL_RST,
  decodeRxRead,
  decodeRxWriteBack,
  decodeTxDesc,
  DESC_BYTES,
  encodeRxRead,
  encodeSrrctl,
  encodeTxDesc,
  ICR,
  NIC_CLASS,
  NIC_DEVICE,
  NIC_REG,
  NIC_VENDOR,
  RCTL_EN,
  RX_ERR,
  RX_STATUS,
  TCTL_EN,
  TX_CMD,
  TX_STATUS,
} from '../../src/devices/nic/nic-defs.js';
import { writeEthHeader, type NetPort, type NetReceiver } from '../../src/devices/net-port.js';
import { SparseMemory } from '../../src/devices/sparse-memory.js';
import { CAP_ID, findCapability } from '../../src/pcie/config-space.js';
import { decodeTlp, encodeTlp } from '../../src/pcie/tlp-codec.js';
import type { PciePort } from '../../src/pcie/link.js';
import { bdf, CPL_STATUS, Tlp } from '../../src/pcie/tlp.js';
import { concat } from '../helpers/bytes.js';
import { dwordLe, le32, PcieBench } from '../helpers/pcie-bench.js';

const BUS = 3;
const BAR0 = 0xd000_0000;
const MSI_ADDRESS = 0xfee0_0000;
const MSI_DATA = 0x0041;
const NIC_MAC = 0x0060_b920_0003;
const PEER_MAC = 0x0200_0000_0101;
/** Reads here answer Unsupported Request (a buffer address nothing decodes). */
const UR_BASE = 0xe000_0000;
const UR_END = 0xf000_0000;
/** Rings above 4 GiB with bit 31 of the low DW set: the 64-bit base registers must hold them whole. */
const TX_RING = 0x1_8000_0000;
const RX_RING = 0x1_8001_0000;
const TX_BUFS = 0x2000_0000;
const RX_HDRS = 0x3000_0000;
const RX_PKTS = 0x4000_0000;
const RCB = 64;

const PARAMS: NicParams = { mpsBytes: 128, mrrsBytes: 256, maxReadTags: 8, txFifoBytes: 8192, rxFifoBytes: 4096, descFetchEntries: 4, rxDescCacheEntries: 8 };

/**
 * The bench's root port as host memory: every TLP the NIC sends up goes through the TLP codec (so it
 * must be a wire-legal TLP: whole DWs, DW-aligned), writes land in a SparseMemory, reads are served
 * from it as a root complex serves them (lengthDw x 4 bytes, completions split at the RCB), reads in
 * [UR_BASE, UR_END) get UR, and writes to the MSI address are recorded as interrupts.
 */
class HostBench extends PcieBench {
  readonly memory = new SparseMemory('host', 2 ** 36);
  readonly msis: { t: number; data: number }[] = [];

  override receiveTlp(tlp: Tlp, port: PciePort): void {
    super.receiveTlp(tlp, port);
    const t = decodeTlp(encodeTlp(tlp));
    if (t.kind === 'MWr') {
      if (t.address === MSI_ADDRESS) this.msis.push({ t: this.s.now(), data: dwordLe(t.data!, 0) });
      else this.memory.write(t.address, t.data!);
    } else if (t.kind === 'MRd') {
      const len = t.lengthDw * 4;
      if (t.address < UR_END && t.address + len > UR_BASE) {
        this.send(Tlp.completion(t, bdf(0, 0), CPL_STATUS.UR, null, 0, 0));
        return;
      }
      const data = this.memory.read(t.address, len);
      for (let off = 0; off < len; ) {
        const n = Math.min(RCB - ((t.address + off) % RCB), len - off);
        this.send(Tlp.completion(t, bdf(0, 0), CPL_STATUS.SC, data.slice(off, off + n), len - off, t.address + off));
        off += n;
      }
    }
  }
}

/** The NIC's Ethernet side: records frames sent (with times), refuses while `refuse` is set. */
class FakeNet implements NetPort {
  receiver: NetReceiver | null = null;
  readonly sent: { t: number; frame: Uint8Array }[] = [];
  refuse = false;
  refusals = 0;
  constructor(private readonly now: () => number) {}
  send(frame: Uint8Array): boolean {
    if (this.refuse) {
      this.refusals++;
      return false;
    }
    this.sent.push({ t: this.now(), frame });
    return true;
  }
  attach(r: NetReceiver): void {
    this.receiver = r;
  }
  frames(): Uint8Array[] {
    return this.sent.map((s) => s.frame);
  }
}

interface RigOptions {
  params?: Partial<NicParams>;
  msi?: boolean;
  txEntries?: number;
  rxEntries?: number;
  /** SRRCTL sizes and HSPLIT. */
  packetBufferBytes?: number;
  headerBufferBytes?: number;
  hsplit?: number;
  itr?: number;
  ims?: number;
}

/** The NIC on the bench, configured as its driver would: BAR0, memory and bus master, MSI, rings, split, ITR, IMS, TX and RX on. */
class Rig {
  readonly host = new HostBench();
  readonly net = new FakeNet(() => this.host.s.now());
  readonly nic: EthernetNic;
  readonly txEntries: number;
  readonly rxEntries: number;
  txTail = 0;
  rxTail = 0;
  private txBufNext = TX_BUFS;

  constructor(o: RigOptions = {}) {
    this.nic = new EthernetNic('nic0', this.host.s, { ...PARAMS, ...o.params }, this.host.port, this.net, NIC_MAC, { generation: 2, lanes: 4 });
    this.txEntries = o.txEntries ?? 8;
    this.rxEntries = o.rxEntries ?? 8;
    const h = this.host;
    assert.equal(h.assignBar(BUS, 0, BAR0), 128 * 1024);
    h.enable(BUS);
    if (o.msi ?? true) this.enableMsi();
    this.write(NIC_REG.CTRL, CTRL_RST);
    this.write(NIC_REG.TDBAL, TX_RING % 2 ** 32);
    this.write(NIC_REG.TDBAH, Math.floor(TX_RING / 2 ** 32));
    this.write(NIC_REG.TDLEN, this.txEntries * DESC_BYTES);
    this.write(NIC_REG.TDH, 0);
    this.write(NIC_REG.TDT, 0);
    this.write(NIC_REG.RDBAL, RX_RING % 2 ** 32);
    this.write(NIC_REG.RDBAH, Math.floor(RX_RING / 2 ** 32));
    this.write(NIC_REG.RDLEN, this.rxEntries * DESC_BYTES);
    this.write(NIC_REG.RDH, 0);
    this.write(NIC_REG.RDT, 0);
    this.write(NIC_REG.SRRCTL, encodeSrrctl(o.packetBufferBytes ?? 2048, o.headerBufferBytes ?? 64));
    this.write(NIC_REG.HSPLIT, o.hsplit ?? 30);
    this.write(NIC_REG.ITR, o.itr ?? 0);
    this.write(NIC_REG.IMS, o.ims ?? ICR.TXDW | ICR.RXT0 | ICR.RXO | ICR.DESC_ERR);
    this.write(NIC_REG.TCTL, TCTL_EN);
    this.write(NIC_REG.RCTL, RCTL_EN);
    this.run();
    h.got.length = 0;
  }

  enableMsi(): void {
    const h = this.host;
    const cap = findCapability({ read32: (o) => h.readConfig(BUS, o) }, CAP_ID.MSI);
    assert.ok(cap > 0);
    h.writeConfig(BUS, cap + 4, MSI_ADDRESS);
    h.writeConfig(BUS, cap + 8, 0);
    h.writeConfig(BUS, cap + 0x0c, MSI_DATA);
    h.writeConfig(BUS, cap, 1 << 16);
  }

  run(): void {
    this.host.run();
  }

  /** A register write (posted: it takes effect when it arrives; call run()). */
  write(reg: number, v: number): void {
    this.host.memWrite(BAR0 + reg, le32(v));
  }

  /** A register read, run to its completion. */
  read(reg: number): number {
    const req = this.host.memRead(BAR0 + reg, 4);
    this.run();
    const [c] = this.host.completionsFor(req);
    assert.equal(c.status, CPL_STATUS.SC);
    return dwordLe(c.data!, 0);
  }

  /** Software's copy of a buffer in host memory. */
  buffer(data: Uint8Array, at?: number): number {
    const address = at ?? this.txBufNext;
    if (at === undefined) this.txBufNext += Math.ceil((data.length + 1) / 64) * 64;
    this.host.memory.write(address, data);
    return address;
  }

  /** Posts a frame as descriptors over `parts` (EOP and RS on the last), without ringing the doorbell; returns the descriptors' ring indexes. */
  postTx(parts: { address: number; lengthBytes: number }[], o: { rs?: boolean } = {}): number[] {
    return parts.map((p, i) => {
      const idx = this.txTail;
      const last = i === parts.length - 1;
      const cmd = last ? TX_CMD.EOP | (o.rs === false ? 0 : TX_CMD.RS) : 0;
      this.host.memory.write(TX_RING + idx * DESC_BYTES, encodeTxDesc({ address: p.address, lengthBytes: p.lengthBytes, cmd, status: 0 }));
      this.txTail = (idx + 1) % this.txEntries;
      return idx;
    });
  }

  /** Posts a frame's bytes as one buffer per part. */
  postFrame(...parts: Uint8Array[]): number[] {
    return this.postTx(parts.map((p) => ({ address: this.buffer(p), lengthBytes: p.length })));
  }

  doorbellTx(): void {
    this.write(NIC_REG.TDT, this.txTail);
    this.run();
  }

  txStatus(idx: number): number {
    return decodeTxDesc(this.host.memory.read(TX_RING + idx * DESC_BYTES, DESC_BYTES)).status;
  }

  /** Posts `n` receive descriptors (header buffer and packet buffer per ring slot) and rings the doorbell. */
  postRx(n: number, o: { packet?: (idx: number) => number; header?: (idx: number) => number } = {}): number[] {
    const out: number[] = [];
    for (let k = 0; k < n; k++) {
      const idx = this.rxTail;
      const packetAddress = o.packet ? o.packet(idx) : RX_PKTS + idx * 0x1000;
      const headerAddress = o.header ? o.header(idx) : RX_HDRS + idx * 64;
      this.host.memory.write(RX_RING + idx * DESC_BYTES, encodeRxRead({ packetAddress, headerAddress }));
      this.rxTail = (idx + 1) % this.rxEntries;
      out.push(idx);
    }
    this.write(NIC_REG.RDT, this.rxTail);
    this.run();
    return out;
  }

  rxWriteBack(idx: number) {
    return decodeRxWriteBack(this.host.memory.read(RX_RING + idx * DESC_BYTES, DESC_BYTES));
  }

  /** A frame arrives from the network. */
  receive(frame: Uint8Array): void {
    this.net.receiver!.netReceive(frame);
  }
}

function pattern(n: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (seed * 59 + i * 13 + (i >> 8)) & 0xff);
}

/** A frame's first `headerBytes`: an Ethernet header (to `dst`, EtherType 0x88b6) and a patterned rest. */
function header(headerBytes: number, seed: number, dst = PEER_MAC, src = NIC_MAC): Uint8Array {
  const h = pattern(headerBytes, seed);
  writeEthHeader(h, dst, src, 0x88b6);
  return h;
}

/** A whole frame addressed to the NIC. */
function inbound(bytes: number, seed: number, dst = NIC_MAC): Uint8Array {
  const f = pattern(bytes, seed);
  writeEthHeader(f, dst, PEER_MAC, 0x88b6);
  return f;
}

describe('EthernetNic identity and registers', () => {
  it('is a network controller with a 128 KiB BAR0 and an MSI capability', () => {
    const r = new Rig({ msi: false });
    assert.equal(r.host.readConfig(BUS, 0x00), ((NIC_DEVICE << 16) | NIC_VENDOR) >>> 0);
    assert.equal(r.host.readConfig(BUS, 0x08) >>> 8, NIC_CLASS);
    assert.ok(findCapability({ read32: (o) => r.host.readConfig(BUS, o) }, CAP_ID.MSI) > 0);
  });

  it('holds 64-bit ring bases whole (bit 31 of the low DW included) and reads them back', () => {
    const r = new Rig();
    assert.equal(r.read(NIC_REG.TDBAL), TX_RING % 2 ** 32);
    assert.equal(r.read(NIC_REG.TDBAH), 1);
    assert.equal(r.read(NIC_REG.RDBAL), RX_RING % 2 ** 32);
    assert.equal(r.read(NIC_REG.RDBAH), 1);
    assert.equal(r.read(NIC_REG.TDLEN), 8 * DESC_BYTES);
    assert.equal(r.read(NIC_REG.SRRCTL), encodeSrrctl(2048, 64));
  });

  it('reports its station address in RAL0/RAH0 with the address-valid bit, and link up', () => {
    const r = new Rig();
    assert.equal(r.read(NIC_REG.RAL0), NIC_MAC % 2 ** 32);
    const rah = r.read(NIC_REG.RAH0);
    assert.equal(rah & 0xffff, Math.floor(NIC_MAC / 2 ** 32));
    assert.ok(rah & 0x8000_0000);
    assert.equal(r.read(NIC_REG.STATUS) & 0x2, 0x2);
  });

  it('a software reset clears the ring registers', () => {
    const r = new Rig();
    r.write(NIC_REG.CTRL, CTRL_RST);
    r.run();
    for (const reg of [NIC_REG.TDBAL, NIC_REG.TDLEN, NIC_REG.RDBAL, NIC_REG.RDLEN, NIC_REG.TCTL, NIC_REG.RCTL, NIC_REG.IMS]) assert.equal(r.read(reg), 0);
  });
});

describe('EthernetNic transmit', () => {
  it('sends a frame made of its descriptors\' buffers, in order, and writes DD back to the RS descriptor', () => {
    const r = new Rig();
    const hdr = header(30, 1); // not a whole number of DWs: the NIC reads the DWs it touches
    const payload = pattern(1024, 2);
    const [i0, i1] = r.postFrame(hdr, payload);
    assert.deepEqual([i0, i1], [0, 1]);
    r.doorbellTx();
    assert.deepEqual(r.net.frames(), [concat(hdr, payload)]);
    assert.equal(r.txStatus(i1), TX_STATUS.DD, 'the EOP descriptor, with RS, is written back done');
    assert.equal(r.txStatus(i0), 0, 'a descriptor without RS is not written back');
    assert.equal(r.read(NIC_REG.TDH), 2);
    assert.equal(r.nic.counters.txFrames, 1);
    assert.equal(r.nic.counters.txBytes, 1054);
    assert.equal(r.nic.counters.badDescriptors, 0);
    assert.equal(r.read(NIC_REG.GPTC), 1);
    assert.equal(r.read(NIC_REG.GPTC), 0, 'read to clear');
    assert.equal(r.host.msis.length, 1);
    assert.equal(r.host.msis[0].data, MSI_DATA);
    assert.equal(r.nic.counters.interrupts, 1);
    assert.equal(r.read(NIC_REG.ICR) & ICR.TXDW, 0, 'the MSI acknowledged TXDW');
  });

  it('the write-back and then the MSI reach host memory after the frame\'s reads, in that order', () => {
    const r = new Rig();
    r.postFrame(header(64, 3));
    r.doorbellTx();
    const ups = r.host.tlps().filter((t) => t.kind === 'MWr');
    assert.deepEqual(
      ups.map((t) => t.address),
      [TX_RING, MSI_ADDRESS],
    );
  });

  it('reads buffers at any byte address and length exactly (DW-granular reads, cut to the bytes)', () => {
    const r = new Rig();
    const a = header(17, 4);
    const b = pattern(333, 5);
    const c = pattern(2, 6);
    r.host.memory.write(TX_BUFS, pattern(1024, 99)); // neighbours of the odd buffers
    r.postTx([
      { address: r.buffer(a, TX_BUFS + 3), lengthBytes: a.length },
      { address: r.buffer(b, TX_BUFS + 0x101), lengthBytes: b.length },
      { address: r.buffer(c, TX_BUFS + 0x302), lengthBytes: c.length },
    ]);
    r.doorbellTx();
    assert.deepEqual(r.net.frames(), [concat(a, b, c)]);
  });

  it('wraps the ring: many more frames than entries, posted a few at a time, go out in order', () => {
    const r = new Rig({ txEntries: 8 });
    const expected: Uint8Array[] = [];
    let seed = 10;
    for (let round = 0; round < 9; round++) {
      const idxs: number[] = [];
      for (let k = 0; k < 3; k++) {
        const f = header(60 + seed, seed++);
        expected.push(f);
        idxs.push(...r.postFrame(f));
      }
      r.doorbellTx();
      assert.equal(r.read(NIC_REG.TDH), r.txTail, `round ${round}: the head caught up with the tail`);
      for (const i of idxs) assert.equal(r.txStatus(i), TX_STATUS.DD);
    }
    assert.equal(expected.length, 27);
    assert.ok(r.txTail !== 0 && 27 > 3 * 8, 'the tail went round the ring three times');
    assert.deepEqual(r.net.frames(), expected);
    assert.equal(r.nic.counters.txFrames, 27);
  });

  it('a two-descriptor frame may straddle the end of the ring', () => {
    const r = new Rig({ txEntries: 8 });
    for (let k = 0; k < 7; k++) r.postFrame(header(64, k));
    r.doorbellTx();
    const hdr = header(30, 50);
    const payload = pattern(500, 51);
    assert.deepEqual(r.postFrame(hdr, payload), [7, 0]);
    r.doorbellTx();
    assert.deepEqual(r.net.frames()[7], concat(hdr, payload));
    assert.equal(r.read(NIC_REG.TDH), 1);
  });

  it('a full ring holds entries - 1 descriptors; the tail equal to the head is an empty ring', () => {
    const r = new Rig({ txEntries: 8 });
    const first = Array.from({ length: 7 }, (_, k) => header(64, 20 + k));
    for (const f of first) r.postFrame(f);
    assert.equal(r.txTail, 7);
    r.doorbellTx();
    assert.deepEqual(r.net.frames(), first);
    assert.equal(r.read(NIC_REG.TDH), 7);
    // Seven more: the tail wraps to 6, one short of the head.
    const second = Array.from({ length: 7 }, (_, k) => header(64, 40 + k));
    for (const f of second) r.postFrame(f);
    assert.equal(r.txTail, 6);
    r.doorbellTx();
    assert.deepEqual(r.net.frames(), [...first, ...second]);
    assert.equal(r.read(NIC_REG.TDH), 6);
    // Writing all eight entries and the tail back at the head says "empty": nothing is sent.
    for (let k = 0; k < 8; k++) r.postFrame(header(64, 60 + k));
    assert.equal(r.txTail, 6);
    r.doorbellTx();
    assert.equal(r.net.sent.length, 14);
    assert.equal(r.nic.counters.descriptorFetches > 0, true);
    assert.equal(r.read(NIC_REG.TDH), 6);
  });

  it('a frame of more descriptors than a fetch burst is fetched whole (no stall waiting for its EOP)', () => {
    const r = new Rig({ txEntries: 16, params: { descFetchEntries: 1 } });
    const frames = [0, 1, 2].map((k) => [header(30, 70 + k), pattern(200, 80 + k), pattern(100, 90 + k)]);
    for (const parts of frames) r.postFrame(...parts);
    r.doorbellTx();
    assert.deepEqual(
      r.net.frames(),
      frames.map((parts) => concat(...parts)),
    );
    assert.equal(r.read(NIC_REG.TDH), 9);
  });

  it('a bad descriptor (length 0, shorter than a header, a frame over 1514 B) is written back DD|BAD, counted, and the next frame still goes out', () => {
    const r = new Rig({ txEntries: 16 });
    const good = [0, 1, 2, 3].map((k) => header(100, 110 + k));
    r.postFrame(good[0]);
    const [zero] = r.postTx([{ address: TX_BUFS + 0x8000, lengthBytes: 0 }]);
    r.postFrame(good[1]);
    const [short] = r.postFrame(header(14, 1).subarray(0, 13));
    r.postFrame(good[2]);
    // 1515 bytes over two descriptors, RS on neither: a refused descriptor is always written back.
    const long = r.postTx(
      [
        { address: r.buffer(header(1000, 2)), lengthBytes: 1000 },
        { address: r.buffer(pattern(515, 3)), lengthBytes: 515 },
      ],
      { rs: false },
    );
    r.postFrame(good[3]);
    r.doorbellTx();
    assert.deepEqual(r.net.frames(), good);
    for (const i of [zero, short, ...long]) assert.equal(r.txStatus(i), TX_STATUS.DD | TX_STATUS.BAD, `descriptor ${i}`);
    assert.equal(r.nic.counters.badDescriptors, 3);
    assert.equal(r.nic.counters.txFrames, 4);
    assert.equal(r.read(NIC_REG.TDH), r.txTail);
    assert.ok(r.read(NIC_REG.ICR) & ICR.DESC_ERR, 'ICR says a descriptor was refused');
    assert.equal(r.read(NIC_REG.ICR), 0, 'read to clear');
    // A 1514-byte frame is the largest that is not refused.
    r.postFrame(header(1514, 4));
    r.doorbellTx();
    assert.equal(r.net.sent.length, 5);
    assert.equal(r.nic.counters.badDescriptors, 3);
  });

  it('a buffer that answers Unsupported Request fails its frame (DD|BAD, dmaErrors) and frees its FIFO room', () => {
    // Six refused 1500-byte frames are more than the 8 KiB transmit FIFO: their room must come back.
    const r = new Rig({ txEntries: 16 });
    const refused: number[] = [];
    for (let k = 0; k < 6; k++) {
      const hdrAddr = r.buffer(header(30, 120 + k));
      refused.push(
        ...r.postTx([
          { address: hdrAddr, lengthBytes: 30 },
          { address: UR_BASE + k * 0x1000, lengthBytes: 1470 },
        ]),
      );
    }
    const good = [header(1500, 130), header(1500, 131)];
    for (const f of good) r.postFrame(f);
    r.doorbellTx();
    assert.deepEqual(r.net.frames(), good);
    for (const i of refused.filter((_, j) => j % 2 === 1)) assert.equal(r.txStatus(i), TX_STATUS.DD | TX_STATUS.BAD);
    assert.equal(r.nic.counters.dmaErrors, 6);
    assert.equal(r.nic.counters.badDescriptors, 6);
    assert.equal(r.read(NIC_REG.TDH), r.txTail);
  });

  it('an unreadable ring stops where the fetch failed (DESC_ERR, dmaErrors) until software sets it up again', () => {
    const r = new Rig();
    r.write(NIC_REG.TDBAL, UR_BASE);
    r.write(NIC_REG.TDBAH, 0);
    const frames = [header(64, 160), header(64, 161)];
    r.postFrame(frames[0]);
    r.doorbellTx();
    assert.equal(r.nic.counters.dmaErrors, 1);
    assert.ok(r.read(NIC_REG.ICR) & ICR.DESC_ERR);
    const fetches = r.nic.counters.descriptorFetches;
    r.postFrame(frames[1]);
    r.doorbellTx();
    assert.equal(r.nic.counters.descriptorFetches, fetches, 'no fetch from a ring that failed');
    assert.equal(r.net.sent.length, 0);
    // The ring where it should be, and the head set: both frames go, none skipped.
    r.write(NIC_REG.TDBAL, TX_RING % 2 ** 32);
    r.write(NIC_REG.TDBAH, Math.floor(TX_RING / 2 ** 32));
    r.write(NIC_REG.TDH, 0);
    r.doorbellTx();
    assert.deepEqual(r.net.frames(), frames);
    assert.equal(r.nic.counters.dmaErrors, 1);
  });

  it('a refused send waits for netReady, then the frames go out in order', () => {
    const r = new Rig();
    r.net.refuse = true;
    const frames = [0, 1, 2].map((k) => header(200, 140 + k));
    for (const f of frames) r.postFrame(f);
    r.doorbellTx();
    assert.equal(r.net.sent.length, 0);
    assert.equal(r.net.refusals, 1, 'the NIC waits after a refusal instead of retrying');
    assert.equal(r.read(NIC_REG.TDH), 0, 'nothing is written back before it is sent');
    assert.equal(r.txStatus(0), 0);
    r.net.refuse = false;
    r.nic.netReady();
    r.run();
    assert.deepEqual(r.net.frames(), frames);
    assert.equal(r.read(NIC_REG.TDH), 3);
    assert.equal(r.txStatus(2), TX_STATUS.DD);
    // A netReady with nothing waiting does nothing.
    r.nic.netReady();
    r.run();
    assert.equal(r.net.sent.length, 3);
  });

  it('nothing is sent while TCTL.EN is clear; enabling it sends what was posted', () => {
    const r = new Rig();
    r.write(NIC_REG.TCTL, 0);
    const f = header(80, 150);
    r.postFrame(f);
    r.doorbellTx();
    assert.equal(r.net.sent.length, 0);
    r.write(NIC_REG.TCTL, TCTL_EN);
    r.run();
    assert.deepEqual(r.net.frames(), [f]);
  });
});

describe('EthernetNic receive', () => {
  it('splits a frame at HSPLIT into the header buffer and the packet buffer, and writes back lengths and DD|EOP', () => {
    const r = new Rig({ hsplit: 30 });
    r.postRx(2);
    const f = inbound(30 + 1024, 1);
    r.receive(f);
    r.run();
    assert.deepEqual(r.host.memory.read(RX_HDRS, 30), f.subarray(0, 30));
    assert.deepEqual(r.host.memory.read(RX_PKTS, 1024), f.subarray(30));
    assert.deepEqual(r.rxWriteBack(0), { headerBytes: 30, packetBytes: 1024, status: RX_STATUS.DD | RX_STATUS.EOP, errors: 0 });
    assert.equal(r.read(NIC_REG.RDH), 1);
    assert.equal(r.nic.counters.rxFrames, 1);
    assert.equal(r.nic.counters.rxBytes, 1054);
    assert.equal(r.read(NIC_REG.GPRC), 1);
    assert.equal(r.read(NIC_REG.GPRC), 0);
    assert.equal(r.host.msis.length, 1);
    // Every TLP the NIC wrote was a whole number of DWs (the bench decodes each through the codec); the data is exact.
    const odd = inbound(30 + 1001, 2);
    r.receive(odd);
    r.run();
    assert.deepEqual(r.host.memory.read(RX_HDRS + 64, 30), odd.subarray(0, 30));
    assert.deepEqual(r.host.memory.read(RX_PKTS + 0x1000, 1001), odd.subarray(30));
    assert.deepEqual(r.rxWriteBack(1), { headerBytes: 30, packetBytes: 1001, status: RX_STATUS.DD | RX_STATUS.EOP, errors: 0 });
  });

  it('a frame no longer than HSPLIT is all header; HSPLIT 0 puts the whole frame in the packet buffer', () => {
    const r = new Rig({ hsplit: 30 });
    r.postRx(1);
    const credit = inbound(30, 3);
    r.receive(credit);
    r.run();
    assert.deepEqual(r.rxWriteBack(0), { headerBytes: 30, packetBytes: 0, status: RX_STATUS.DD | RX_STATUS.EOP, errors: 0 });
    assert.deepEqual(r.host.memory.read(RX_HDRS, 30), credit);
    const n = new Rig({ hsplit: 0 });
    n.postRx(1);
    const f = inbound(700, 4);
    n.receive(f);
    n.run();
    assert.deepEqual(n.rxWriteBack(0), { headerBytes: 0, packetBytes: 700, status: RX_STATUS.DD | RX_STATUS.EOP, errors: 0 });
    assert.deepEqual(n.host.memory.read(RX_PKTS, 700), f);
  });

  it('with no descriptor posted a frame waits in the receive FIFO and is placed once RDT moves', () => {
    const r = new Rig();
    const f = inbound(500, 5);
    r.receive(f);
    r.run();
    assert.equal(r.nic.counters.rxFrames, 0);
    assert.equal(r.nic.counters.rxMissed, 0);
    assert.equal(r.host.msis.length, 0);
    r.postRx(1);
    assert.equal(r.nic.counters.rxFrames, 1);
    assert.deepEqual(r.host.memory.read(RX_HDRS, 30), f.subarray(0, 30));
    assert.deepEqual(r.host.memory.read(RX_PKTS, 470), f.subarray(30));
    assert.equal(r.rxWriteBack(0).status, RX_STATUS.DD | RX_STATUS.EOP);
  });

  it('a full receive FIFO misses the frame: rxMissed, MPC (read to clear), RXO; the frames it held are placed later in order', () => {
    const r = new Rig(); // rxFifoBytes 4096
    const frames = [0, 1, 2].map((k) => inbound(1514, 10 + k));
    for (const f of frames) r.receive(f);
    r.run();
    assert.equal(r.nic.counters.rxMissed, 1);
    assert.equal(r.read(NIC_REG.MPC), 1);
    assert.equal(r.read(NIC_REG.MPC), 0, 'read to clear');
    assert.equal(r.host.msis.length, 1, 'RXO interrupts');
    assert.ok(r.read(NIC_REG.ICR) & ICR.RXO);
    r.postRx(4);
    assert.equal(r.nic.counters.rxFrames, 2);
    assert.deepEqual(r.host.memory.read(RX_PKTS, 1484), frames[0].subarray(30));
    assert.deepEqual(r.host.memory.read(RX_PKTS + 0x1000, 1484), frames[1].subarray(30));
    assert.deepEqual(decodeRxRead(r.host.memory.read(RX_RING + 2 * DESC_BYTES, DESC_BYTES)), { packetAddress: RX_PKTS + 0x2000, headerAddress: RX_HDRS + 128 }, 'the third descriptor is still as posted');
    // The FIFO drained: a frame fits again.
    r.receive(frames[2]);
    r.run();
    assert.equal(r.nic.counters.rxFrames, 3);
    assert.equal(r.nic.counters.rxMissed, 1);
  });

  it('frames arriving with the receiver off are missed', () => {
    const r = new Rig();
    r.write(NIC_REG.RCTL, 0);
    r.run();
    r.postRx(1);
    r.receive(inbound(100, 20));
    r.run();
    assert.equal(r.nic.counters.rxMissed, 1);
    assert.equal(r.nic.counters.rxFrames, 0);
  });

  it('a frame larger than the packet buffer is refused: RXE write-back, badDescriptors, DESC_ERR; the next frame uses the next descriptor', () => {
    const r = new Rig({ packetBufferBytes: 1024, hsplit: 0 });
    r.postRx(2);
    r.receive(inbound(1514, 30));
    const small = inbound(1024, 31);
    r.receive(small);
    r.run();
    assert.deepEqual(r.rxWriteBack(0), { headerBytes: 0, packetBytes: 0, status: RX_STATUS.DD | RX_STATUS.EOP, errors: RX_ERR.RXE });
    assert.equal(r.nic.counters.badDescriptors, 1);
    assert.equal(r.nic.counters.rxFrames, 1);
    assert.deepEqual(r.rxWriteBack(1), { headerBytes: 0, packetBytes: 1024, status: RX_STATUS.DD | RX_STATUS.EOP, errors: 0 });
    assert.deepEqual(r.host.memory.read(RX_PKTS + 0x1000, 1024), small);
    assert.ok(r.read(NIC_REG.ICR) & ICR.DESC_ERR);
    assert.equal(r.read(NIC_REG.RDH), 2);
  });

  it('a header longer than the header buffer, a missing buffer or a buffer not DW-aligned is refused with RXE', () => {
    const r = new Rig({ hsplit: 100, headerBufferBytes: 64 });
    r.postRx(1);
    r.receive(inbound(300, 40));
    r.run();
    assert.equal(r.rxWriteBack(0).errors, RX_ERR.RXE);
    const z = new Rig({ hsplit: 30 });
    z.postRx(1, { packet: () => 0 });
    z.postRx(1, { packet: (i) => RX_PKTS + i * 0x1000 + 2 });
    z.receive(inbound(300, 41));
    z.receive(inbound(300, 42));
    z.run();
    assert.equal(z.rxWriteBack(0).errors, RX_ERR.RXE);
    assert.equal(z.rxWriteBack(1).errors, RX_ERR.RXE);
    assert.equal(z.nic.counters.badDescriptors, 2);
    assert.equal(z.nic.counters.rxFrames, 0);
  });

  it('receive descriptors wrap around the ring', () => {
    const r = new Rig({ rxEntries: 8, hsplit: 30 });
    const got: Uint8Array[] = [];
    const sent: Uint8Array[] = [];
    for (let round = 0; round < 5; round++) {
      const idxs = r.postRx(5);
      for (let k = 0; k < 5; k++) {
        const f = inbound(200 + round * 10 + k, round * 5 + k);
        sent.push(f);
        r.receive(f);
      }
      r.run();
      for (const i of idxs) {
        const wb = r.rxWriteBack(i);
        assert.equal(wb.status, RX_STATUS.DD | RX_STATUS.EOP);
        got.push(concat(r.host.memory.read(RX_HDRS + i * 64, wb.headerBytes), r.host.memory.read(RX_PKTS + i * 0x1000, wb.packetBytes)));
      }
    }
    assert.deepEqual(got, sent);
    assert.equal(r.read(NIC_REG.RDH), 25 % 8);
  });

  it('takes frames for its own address and group addresses; another station\'s unicast is filtered', () => {
    const r = new Rig();
    r.postRx(4);
    r.receive(inbound(100, 50, PEER_MAC + 1));
    const broadcast = inbound(100, 51, 0xffff_ffff_ffff);
    r.receive(broadcast);
    r.run();
    assert.equal(r.nic.counters.rxFrames, 1);
    assert.equal(r.nic.counters.rxMissed, 0);
    assert.deepEqual(r.host.memory.read(RX_HDRS, 30), broadcast.subarray(0, 30));
  });
});

describe('EthernetNic interrupts', () => {
  const ITR = 40; // 40 x 256 ns = 10.24 us
  const INTERVAL_PS = ITR * 256_000;

  it('ITR: causes within the interval after an MSI give one more MSI, when the interval ends', () => {
    const r = new Rig({ itr: ITR });
    r.postRx(4);
    const s = r.host.s;
    const t0 = s.now();
    r.receive(inbound(100, 1));
    s.schedule(2_000_000, () => r.receive(inbound(100, 2)));
    s.schedule(4_000_000, () => r.receive(inbound(100, 3)));
    r.run();
    assert.equal(r.nic.counters.rxFrames, 3);
    assert.equal(r.host.msis.length, 2, 'three causes, two messages');
    const [a, b] = r.host.msis.map((m) => m.t);
    assert.ok(a - t0 < 2_000_000, 'the first goes out at once');
    // The first MSI queues behind the frame's writes on the link; the second leaves on an idle link.
    assert.ok(b - a <= INTERVAL_PS && b - a > INTERVAL_PS - 500_000, `the second when the interval since the first ends (${b - a} ps apart)`);
    assert.ok(b - t0 > 4_000_000);
    assert.equal(r.nic.counters.interrupts, 2);
    // A cause an interval after the second MSI interrupts at once again.
    const t1 = s.now() + INTERVAL_PS;
    s.schedule(INTERVAL_PS, () => r.receive(inbound(100, 4)));
    r.run();
    assert.equal(r.host.msis.length, 3);
    assert.ok(r.host.msis[2].t - t1 < 2_000_000);
  });

  it('ITR 0 does not throttle: each cause gets its MSI', () => {
    const r = new Rig({ itr: 0 });
    r.postRx(4);
    r.receive(inbound(100, 1));
    r.host.s.schedule(1_000_000, () => r.receive(inbound(100, 2)));
    r.run();
    assert.equal(r.host.msis.length, 2);
  });

  it('no MSI while MSI is disabled: the causes stay in ICR for software to read', () => {
    const r = new Rig({ msi: false });
    r.postFrame(header(64, 1));
    r.doorbellTx();
    r.postRx(1);
    r.receive(inbound(100, 2));
    r.run();
    assert.equal(r.net.sent.length, 1);
    assert.equal(r.nic.counters.rxFrames, 1);
    assert.equal(r.host.msis.length, 0);
    assert.equal(r.nic.counters.interrupts, 0);
    assert.equal(r.read(NIC_REG.ICR), ICR.TXDW | ICR.RXT0);
    // Enabled later, the next cause is signalled.
    r.enableMsi();
    r.postRx(1);
    r.receive(inbound(100, 3));
    r.run();
    assert.equal(r.host.msis.length, 1);
  });

  it('masked causes do not interrupt until IMS unmasks them; IMC masks again', () => {
    const r = new Rig({ ims: 0 });
    r.postRx(2);
    r.receive(inbound(100, 1));
    r.run();
    assert.equal(r.host.msis.length, 0);
    r.write(NIC_REG.IMS, ICR.RXT0);
    r.run();
    assert.equal(r.host.msis.length, 1, 'the pending cause is signalled once unmasked');
    r.write(NIC_REG.IMC, ICR.RXT0);
    r.run();
    r.receive(inbound(100, 2));
    r.run();
    assert.equal(r.host.msis.length, 1);
    assert.equal(r.read(NIC_REG.IMS), 0);
  });
});

describe('EthernetNic determinism', () => {
  it('the same traffic twice gives the same TLPs at the same times', () => {
    const once = () => {
      const r = new Rig({ itr: 10 });
      r.postRx(6);
      for (let k = 0; k < 5; k++) r.postFrame(header(30, k), pattern(700 + k, k));
      r.doorbellTx();
      for (let k = 0; k < 6; k++) r.host.s.schedule(k * 300_000, () => r.receive(inbound(400 + k, k)));
      r.run();
      return r.host.got.map((g) => `${g.t}:${g.tlp.kind}:${g.tlp.address}:${g.tlp.lengthDw}`).join(' ');
    };
    assert.equal(once(), once());
  });
});
