import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DconnectError } from '../../src/core/errors.js';
import {
  ADMIN_OPCODE,
  IDENTIFY_CNS,
  NVM_OPCODE,
  REG,
  STATUS,
  decodeAqa,
  decodeCap,
  decodeCc,
  decodeDoorbell,
  doorbellOffset,
  encodeAqa,
  encodeCap,
  encodeCc,
  statusName,
  statusValue,
} from '../../src/devices/nvme/nvme-defs.js';
import {
  cqePhase,
  createIoCqCommand,
  createIoCqFields,
  createIoSqCommand,
  createIoSqFields,
  decodeCqe,
  decodeIdentifyController,
  decodeIdentifyNamespace,
  decodeSqe,
  encodeCqe,
  encodeIdentifyController,
  encodeIdentifyNamespace,
  encodeSqe,
  identifyCommand,
  ioCommand,
  ioFields,
  type CompletionEntry,
  type SubmissionEntry,
} from '../../src/devices/nvme/nvme-structs.js';

/** fast-check 4 records have a null prototype unless asked; deepEqual compares prototypes. */
const PLAIN = { noNullPrototype: true } as const;
const isMalformed = (e: unknown) => e instanceof DconnectError && e.code === 'MALFORMED_PACKET';

describe('nvme-defs', () => {
  it('has the BAR0 register offsets of NVMe 1.x', () => {
    assert.deepEqual([REG.CAP, REG.VS, REG.INTMS, REG.INTMC, REG.CC, REG.CSTS, REG.AQA, REG.ASQ, REG.ACQ], [0, 8, 0xc, 0x10, 0x14, 0x1c, 0x24, 0x28, 0x30]);
  });

  it('places doorbells at 0x1000 + (2y + isCQ) * (4 << DSTRD)', () => {
    assert.equal(doorbellOffset(0, false, 0), 0x1000);
    assert.equal(doorbellOffset(0, true, 0), 0x1004);
    assert.equal(doorbellOffset(1, false, 0), 0x1008);
    assert.equal(doorbellOffset(1, true, 0), 0x100c);
    assert.equal(doorbellOffset(1, true, 1), 0x1018);
    assert.deepEqual(decodeDoorbell(0x100c, 0), { queueId: 1, isCompletion: true });
    assert.deepEqual(decodeDoorbell(0x1010, 1), { queueId: 1, isCompletion: false });
    assert.equal(decodeDoorbell(0x1002, 0), null);
    assert.equal(decodeDoorbell(0x1004, 1), null);
    assert.equal(decodeDoorbell(0xffc, 0), null);
  });

  it('decodeDoorbell inverts doorbellOffset', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffff }), fc.boolean(), fc.integer({ min: 0, max: 8 }), (queueId, isCompletion, dstrd) => {
        assert.deepEqual(decodeDoorbell(doorbellOffset(queueId, isCompletion, dstrd), dstrd), { queueId, isCompletion });
      }),
    );
  });

  it('encodes CAP, CC and AQA fields at their bit positions', () => {
    const cap = { mqes: 1023, cqr: true, ams: 0, to: 20, dstrd: 0, nssrs: false, css: 1, mpsmin: 0, mpsmax: 4 };
    assert.equal(encodeCap(cap), 0x0040_0020_1401_03ffn);
    assert.deepEqual(decodeCap(encodeCap(cap)), cap);
    const cc = { en: true, css: 0, mps: 0, ams: 0, shn: 0, iosqes: 6, iocqes: 4 };
    assert.equal(encodeCc(cc), 0x0046_0001);
    assert.deepEqual(decodeCc(encodeCc(cc)), cc);
    assert.equal(encodeAqa(32, 64), 0x003f_001f);
    assert.deepEqual(decodeAqa(0x003f_001f), { sqEntries: 32, cqEntries: 64 });
  });

  it('numbers statuses as SCT << 8 | SC', () => {
    assert.equal(statusValue(STATUS.INVALID_QUEUE_IDENTIFIER), 0x101);
    assert.equal(statusValue(STATUS.LBA_OUT_OF_RANGE), 0x080);
    assert.equal(statusName(STATUS.INVALID_QUEUE_IDENTIFIER), 'SCT 1 SC 0x01 (INVALID_QUEUE_IDENTIFIER)');
    assert.equal(statusName({ sct: 2, sc: 0x81 }), 'SCT 2 SC 0x81 (UNRECOVERED_READ_ERROR)');
    assert.equal(statusName({ sct: 2, sc: 0x86 }), 'SCT 2 SC 0x86', 'a status the model has no name for: the numbers alone');
  });
});

describe('submission queue entry', () => {
  it('lays out a Read byte-exactly', () => {
    const e = ioCommand(NVM_OPCODE.READ, 0x1234, 1, 0x10000, 256, 0x1000, 0);
    const expected = new Uint8Array(64);
    expected.set([0x02, 0x00, 0x34, 0x12], 0); // CDW0: opcode, flags, CID
    expected.set([0x01, 0, 0, 0], 4); // NSID
    expected.set([0x00, 0x10, 0, 0, 0, 0, 0, 0], 24); // PRP1
    expected.set([0x00, 0x00, 0x01, 0x00], 40); // CDW10: SLBA low
    expected.set([0xff, 0x00, 0x00, 0x00], 48); // CDW12: NLB = 255
    assert.deepEqual(encodeSqe(e), expected);
    assert.deepEqual(ioFields(decodeSqe(expected)), { slba: 0x10000, blocks: 256 });
  });

  it('splits a 64-bit SLBA over CDW10 (low) and CDW11 (high)', () => {
    const e = ioCommand(NVM_OPCODE.WRITE, 1, 1, 2 ** 40 + 5, 65536, 0x2000, 0x3000);
    assert.equal(e.cdw10, 5);
    assert.equal(e.cdw11, 0x100);
    assert.equal(e.cdw12, 0xffff);
    assert.deepEqual(ioFields(decodeSqe(encodeSqe(e))), { slba: 2 ** 40 + 5, blocks: 65536 });
    assert.throws(() => ioCommand(NVM_OPCODE.WRITE, 1, 1, 0, 0, 0, 0), isMalformed);
    assert.throws(() => ioCommand(NVM_OPCODE.WRITE, 1, 1, 0, 65537, 0, 0), isMalformed);
  });

  it('round-trips 64-bit PRPs up to 2^53 and rejects larger values', () => {
    const e = ioCommand(NVM_OPCODE.READ, 7, 1, 0, 1, 2 ** 53, 2 ** 53 - 4096);
    const back = decodeSqe(encodeSqe(e));
    assert.equal(back.prp1, 2 ** 53);
    assert.equal(back.prp2, 2 ** 53 - 4096);
    const bytes = encodeSqe(e);
    bytes[24] = 1; // 2^53 + 1
    assert.throws(() => decodeSqe(bytes), isMalformed);
    assert.throws(() => encodeSqe({ ...e, prp1: -1 }), isMalformed);
    assert.throws(() => encodeSqe({ ...e, cid: 0x10000 }), isMalformed);
  });

  it('rejects a wrong length', () => {
    assert.throws(() => decodeSqe(new Uint8Array(63)), isMalformed);
    assert.throws(() => decodeSqe(new Uint8Array(65)), isMalformed);
  });

  it('decodes from a view into a larger buffer', () => {
    const e = ioCommand(NVM_OPCODE.READ, 9, 1, 3, 2, 0x4000, 0);
    const ring = new Uint8Array(64 * 4);
    ring.set(encodeSqe(e), 128);
    assert.deepEqual(decodeSqe(ring.subarray(128, 192)), e);
  });

  it('round-trips arbitrary entries', () => {
    const u32 = fc.nat({ max: 0xffffffff });
    const u64 = fc.nat({ max: Number.MAX_SAFE_INTEGER });
    const entry = fc.record({
      opcode: fc.nat({ max: 0xff }),
      cid: fc.nat({ max: 0xffff }),
      nsid: u32,
      prp1: u64,
      prp2: u64,
      cdw10: u32,
      cdw11: u32,
      cdw12: u32,
      cdw13: u32,
      cdw14: u32,
      cdw15: u32,
    }, PLAIN);
    fc.assert(fc.property(entry, (e: SubmissionEntry) => assert.deepEqual(decodeSqe(encodeSqe(e)), e)));
  });

  it('encodes admin queue and identify commands', () => {
    const cq = createIoCqCommand(3, { qid: 1, entries: 256, prp1: 0x8000, interruptVector: 2, interruptsEnabled: true });
    assert.equal(cq.opcode, ADMIN_OPCODE.CREATE_IO_CQ);
    assert.equal(cq.cdw10, 0x00ff_0001);
    assert.equal(cq.cdw11, 0x0002_0003);
    assert.deepEqual(createIoCqFields(decodeSqe(encodeSqe(cq))), { qid: 1, entries: 256, prp1: 0x8000, interruptVector: 2, interruptsEnabled: true, physicallyContiguous: true });
    const sq = createIoSqCommand(4, { qid: 1, entries: 65536, cqid: 1, prp1: 0x9000, priority: 0 });
    assert.equal(sq.opcode, ADMIN_OPCODE.CREATE_IO_SQ);
    assert.equal(sq.cdw10, 0xffff_0001);
    assert.equal(sq.cdw11, 0x0001_0001);
    assert.deepEqual(createIoSqFields(sq), { qid: 1, entries: 65536, cqid: 1, prp1: 0x9000, priority: 0, physicallyContiguous: true });
    const id = identifyCommand(5, IDENTIFY_CNS.CONTROLLER, 0, 0xa000);
    assert.equal(encodeSqe(id)[0], 0x06);
    assert.equal(encodeSqe(id)[40], 0x01);
  });
});

describe('completion queue entry', () => {
  const base: CompletionEntry = { dw0: 0xdeadbeef, sqHead: 7, sqId: 3, cid: 0xbeef, phase: 1, status: STATUS.INVALID_QUEUE_IDENTIFIER };

  it('lays out DW0, DW2 and DW3 byte-exactly', () => {
    const expected = new Uint8Array([0xef, 0xbe, 0xad, 0xde, 0, 0, 0, 0, 0x07, 0x00, 0x03, 0x00, 0xef, 0xbe, 0x03, 0x02]);
    assert.deepEqual(encodeCqe(base), expected);
    assert.deepEqual(decodeCqe(expected), base);
  });

  it('keeps the phase tag in DW3 bit 16 (byte 14 bit 0)', () => {
    const one = encodeCqe({ ...base, status: STATUS.SUCCESS, phase: 1 });
    const zero = encodeCqe({ ...base, status: STATUS.SUCCESS, phase: 0 });
    assert.equal(one[14] ^ zero[14], 0x01);
    assert.deepEqual(one.subarray(0, 14), zero.subarray(0, 14));
    assert.equal(one[15], zero[15]);
    assert.equal(cqePhase(one), 1);
    assert.equal(cqePhase(zero), 0);
  });

  it('places SC in bits 24:17 and SCT in bits 27:25', () => {
    const lba = new DataView(encodeCqe({ ...base, phase: 0, status: STATUS.LBA_OUT_OF_RANGE }).buffer).getUint32(12, true);
    assert.equal(lba >>> 16, 0x0100); // 0x80 << 17
    const sct = new DataView(encodeCqe({ ...base, phase: 0, status: { sct: 7, sc: 0 } }).buffer).getUint32(12, true);
    assert.equal(sct >>> 16, 0x0e00);
  });

  it('round-trips arbitrary entries and rejects bad input', () => {
    const entry = fc.record({
      dw0: fc.nat({ max: 0xffffffff }),
      sqHead: fc.nat({ max: 0xffff }),
      sqId: fc.nat({ max: 0xffff }),
      cid: fc.nat({ max: 0xffff }),
      phase: fc.nat({ max: 1 }),
      status: fc.record({ sct: fc.nat({ max: 7 }), sc: fc.nat({ max: 0xff }) }, PLAIN),
    }, PLAIN);
    fc.assert(fc.property(entry, (c) => assert.deepEqual(decodeCqe(encodeCqe(c)), c)));
    assert.throws(() => decodeCqe(new Uint8Array(15)), isMalformed);
    assert.throws(() => encodeCqe({ ...base, phase: 2 }), isMalformed);
    assert.throws(() => encodeCqe({ ...base, status: { sct: 8, sc: 0 } }), isMalformed);
  });
});

describe('identify data', () => {
  it('places SN, MN and FR space padded and round-trips', () => {
    const ctrl = { serial: 'DC0001', model: 'dconnect NVMe model', firmware: '1.0', vid: 0x1b36, mdts: 5, nn: 1 };
    const bytes = encodeIdentifyController(ctrl);
    assert.equal(bytes.length, 4096);
    assert.equal(Buffer.from(bytes.subarray(4, 24)).toString('latin1'), 'DC0001'.padEnd(20));
    assert.equal(Buffer.from(bytes.subarray(24, 64)).toString('latin1'), 'dconnect NVMe model'.padEnd(40));
    assert.equal(Buffer.from(bytes.subarray(64, 72)).toString('latin1'), '1.0     ');
    assert.deepEqual([bytes[0], bytes[1], bytes[77], bytes[512], bytes[513], bytes[516]], [0x36, 0x1b, 5, 0x66, 0x44, 1]);
    assert.deepEqual(decodeIdentifyController(bytes), ctrl);
    assert.deepEqual(decodeIdentifyController(encodeIdentifyController({ serial: 'S'.repeat(20), model: '', firmware: 'F'.repeat(8) })), {
      serial: 'S'.repeat(20),
      model: '',
      firmware: 'F'.repeat(8),
      vid: 0,
      mdts: 0,
      nn: 1,
    });
    assert.throws(() => encodeIdentifyController({ serial: 'S'.repeat(21), model: '', firmware: '' }), isMalformed);
    assert.throws(() => encodeIdentifyController({ serial: 'é', model: '', firmware: '' }), isMalformed);
    assert.throws(() => decodeIdentifyController(new Uint8Array(4095)), isMalformed);
  });

  it('places NSZE, NCAP, NUSE and LBAF0.LBADS and round-trips', () => {
    const ns = { nszeBlocks: 2 ** 40 + 3, ncapBlocks: 2 ** 40, nuseBlocks: 12, lbaDataSizeLog2: 12 };
    const bytes = encodeIdentifyNamespace(ns);
    const dv = new DataView(bytes.buffer);
    assert.equal(bytes.length, 4096);
    assert.deepEqual([dv.getUint32(0, true), dv.getUint32(4, true)], [3, 0x100]);
    assert.deepEqual([dv.getUint32(8, true), dv.getUint32(12, true)], [0, 0x100]);
    assert.equal(dv.getUint32(16, true), 12);
    assert.deepEqual([bytes[25], bytes[26]], [0, 0]);
    assert.equal(dv.getUint32(128, true), 12 << 16);
    assert.deepEqual(decodeIdentifyNamespace(bytes), ns);
    const defaulted = decodeIdentifyNamespace(encodeIdentifyNamespace({ nszeBlocks: 1000, ncapBlocks: 900, lbaDataSizeLog2: 9 }));
    assert.deepEqual(defaulted, { nszeBlocks: 1000, ncapBlocks: 900, nuseBlocks: 900, lbaDataSizeLog2: 9 });
    assert.throws(() => encodeIdentifyNamespace({ nszeBlocks: 1, ncapBlocks: 1, lbaDataSizeLog2: 8 }), isMalformed);
    assert.throws(() => decodeIdentifyNamespace(new Uint8Array(4096)), isMalformed); // LBADS 0
    assert.throws(() => decodeIdentifyNamespace(bytes.subarray(0, 4000)), isMalformed);
  });
});
