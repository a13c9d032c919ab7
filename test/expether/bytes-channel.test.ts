import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { VirtualScheduler } from '../../src/core/scheduler.js';
import { Frame } from '../../src/ethernet/frame.js';
import { CableChannel, EthPort, type FrameReceiver } from '../../src/ethernet/port.js';
import { BytesCableChannel } from '../../src/expether/bytes-channel.js';
import { EXPETHER_ETHERTYPE, ExpEtherPdu } from '../../src/expether/pdu.js';
import { CPL_STATUS, requestedBytes, Tlp } from '../../src/pcie/tlp.js';
import { encodeTlp } from '../../src/pcie/tlp-codec.js';

class Sink implements FrameReceiver {
  got: Array<{ t: number; frame: Frame }> = [];
  constructor(private readonly s: VirtualScheduler) {}
  receiveFrame(frame: Frame): void {
    this.got.push({ t: this.s.now(), frame });
  }
}

function frames(): Frame[] {
  const data = new Uint8Array(256).map((_, i) => i);
  const pdus = [
    new ExpEtherPdu('tlp', 0, -1, Tlp.memWrite(0x0300, 0x1_2345_6780, data, 3), null),
    new ExpEtherPdu('tlp', 1, 7, Tlp.memRead(0x0400, 9, 0x8000, 512), null),
    new ExpEtherPdu('ack', -1, 12, null, null),
    new ExpEtherPdu('routes', 2, 7, null, [{ mac: 0x0060_b900_0100, secondaryBus: 3, subordinateBus: 3, memBase: 0xe000_0000, memLimit: 0xe00f_ffff }]),
  ];
  return pdus.map((p) => {
    const f = new Frame(0x0060_b900_0100, 0x0060_b900_0001, 1, EXPETHER_ETHERTYPE, p, p.payloadBytes());
    f.readRequest = p.tlp?.kind === 'MRd';
    return f;
  });
}

function run(mk: (a: EthPort, b: EthPort) => CableChannel) {
  const s = new VirtualScheduler();
  const sink = new Sink(s);
  const a = new EthPort('a', s, { rateBitsPerSec: 10e9, queueLimitBytes: 1 << 20 }, null);
  const b = new EthPort('b', s, { rateBitsPerSec: 10e9, queueLimitBytes: 1 << 20 }, sink);
  const ch = mk(a, b);
  const sent = frames();
  for (const f of sent) a.send(f, 100_000);
  s.run();
  return { sent, got: sink.got, ch };
}

describe('BytesCableChannel', () => {
  it('delivers equal frames at the same times as the plain cable, sharing no object with the sender', () => {
    const plain = run((a, b) => new CableChannel(a, b, 25));
    const bytes = run((a, b) => new BytesCableChannel(a, b, 25));
    assert.deepEqual(
      bytes.got.map((g) => g.t),
      plain.got.map((g) => g.t),
    );
    assert.equal(bytes.got.length, 4);
    for (let i = 0; i < 4; i++) {
      const s = bytes.sent[i];
      const g = bytes.got[i].frame as Frame<ExpEtherPdu>;
      assert.strictEqual(plain.got[i].frame, plain.sent[i], 'the plain cable hands over the object itself');
      assert.deepEqual(g, s);
      assert.notStrictEqual(g, s);
      assert.notStrictEqual(g.payload, s.payload);
      const tlp = (s.payload as ExpEtherPdu).tlp;
      if (tlp) {
        assert.notStrictEqual(g.payload.tlp, tlp);
        if (tlp.data) assert.notStrictEqual(g.payload.tlp!.data!.buffer, tlp.data.buffer);
      }
    }
    // The sender changing its retransmission copy afterwards (a new piggybacked ACK) changes nothing received.
    (bytes.sent[0].payload as ExpEtherPdu).ack = 99;
    assert.equal((bytes.got[0].frame.payload as ExpEtherPdu).ack, -1);
    const ch = bytes.ch as BytesCableChannel;
    assert.equal(ch.framesEncoded, 4);
    assert.equal(ch.bytesEncoded, bytes.sent.reduce((n, f) => n + 18 + f.payloadBytes, 0));
  });

  it('refuses a frame that is not an ExpEther frame, naming the problem', () => {
    const s = new VirtualScheduler();
    const a = new EthPort('a', s, { rateBitsPerSec: 10e9, queueLimitBytes: 1 << 20 }, null);
    const b = new EthPort('b', s, { rateBitsPerSec: 10e9, queueLimitBytes: 1 << 20 }, new Sink(s));
    new BytesCableChannel(a, b, 25);
    assert.throws(() => a.send(new Frame(1, 2, 1, 0x0800, 'ip', 60)), /BAD_PDU|not an ExpEther PDU/);
  });
});

describe('error completions carry an encodable Byte Count (§2.2.9)', () => {
  it('a UR completion to a memory read counts the bytes asked for; to anything else, 4', () => {
    const rd = Tlp.memRead(0x100, 1, 0x1000, 512);
    const ur = Tlp.completion(rd, 0x200, CPL_STATUS.UR, null, 0, 0);
    assert.equal(ur.byteCount, 512);
    assert.doesNotThrow(() => encodeTlp(ur));
    const cfg = Tlp.config('CfgRd0', 0x100, 2, 0x0300, 0, null);
    assert.equal(Tlp.completion(cfg, 0x200, CPL_STATUS.UR, null, 0, 0).byteCount, 4);
    assert.equal(Tlp.completion(cfg, 0x200, CPL_STATUS.SC, null, 4, 0).byteCount, 4, 'a given byte count is kept');
  });

  it('requestedBytes follows the byte enables', () => {
    const t = Tlp.memRead(0, 0, 0, 4);
    t.firstBe = 0b0110;
    assert.equal(requestedBytes(t), 2);
    t.firstBe = 0;
    assert.equal(requestedBytes(t), 1, 'a zero-length read');
    const m = Tlp.memRead(0, 0, 0, 16);
    m.firstBe = 0b1100;
    m.lastBe = 0b0011;
    assert.equal(requestedBytes(m), 16 - 2 - 2);
    assert.equal(requestedBytes(Tlp.memRead(0, 0, 0, 4096)), 4096);
  });
});
