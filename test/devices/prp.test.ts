import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DconnectError } from '../../src/core/errors.js';
import { STATUS } from '../../src/devices/nvme/nvme-defs.js';
import {
  buildPrps,
  decodePrpEntries,
  encodePrpEntries,
  mergeSegments,
  prpListFetches,
  prpListSegments,
  prpPlan,
  type BuiltPrps,
  type PrpPlan,
  type PrpSegments,
  type Segment,
} from '../../src/devices/nvme/prp.js';

const PAGE = 4096;

function expectError(result: PrpPlan | PrpSegments, sc: number): void {
  if (result.kind !== 'error') assert.fail(`expected an error, got ${result.kind}`);
  assert.deepEqual(result.status, { sct: 0, sc });
  assert.ok(result.reason.length > 0);
}

/** Guest memory holding list pages as bytes, read the way a device would. */
class ListMemory {
  readonly pages = new Map<number, Uint8Array>();
  constructor(readonly pageBytes: number) {}
  store(built: BuiltPrps): void {
    for (const p of built.listPages) {
      const bytes = new Uint8Array(this.pageBytes);
      bytes.set(encodePrpEntries(p.entries));
      this.pages.set(p.address, bytes);
    }
  }
  read(address: number, entries: number): number[] {
    const offset = address % this.pageBytes;
    const page = this.pages.get(address - offset);
    assert.ok(page, `no list page at 0x${address.toString(16)}`);
    return decodePrpEntries(page.subarray(offset, offset + entries * 8));
  }
}

/** The device's view: plan, fetch the list piece by piece following chain pointers, build segments. */
function deviceSegments(prp1: number, prp2: number, length: number, pageBytes: number, memory: ListMemory): Segment[] {
  const plan = prpPlan(prp1, prp2, length, pageBytes);
  if (plan.kind === 'error') assert.fail(plan.reason);
  if (plan.kind === 'direct') return plan.segments;
  const entries: number[] = [];
  for (const f of prpListFetches(plan.listAddress, plan.entriesNeeded, pageBytes)) {
    entries.push(...memory.read(f.address ?? entries[entries.length - 1], f.entries));
  }
  const result = prpListSegments(plan.firstSegment, entries, length - plan.firstSegment.lengthBytes, pageBytes, plan.listAddress);
  if (result.kind === 'error') assert.fail(result.reason);
  return result.segments;
}

function listPlan(plan: PrpPlan) {
  assert.equal(plan.kind, 'list');
  return plan as Extract<PrpPlan, { kind: 'list' }>;
}

describe('prpPlan', () => {
  it('maps a single page from PRP1 alone (PRP2 ignored)', () => {
    assert.deepEqual(prpPlan(0x10000, 0x123, PAGE, PAGE), { kind: 'direct', segments: [{ address: 0x10000, lengthBytes: PAGE }] });
    assert.deepEqual(prpPlan(0x10200, 0, 0xe00, PAGE), { kind: 'direct', segments: [{ address: 0x10200, lengthBytes: 0xe00 }] });
    assert.deepEqual(prpPlan(0x10000, 0, 512, PAGE), { kind: 'direct', segments: [{ address: 0x10000, lengthBytes: 512 }] });
  });

  it('maps two pages from PRP1 and PRP2, merging contiguous pages', () => {
    assert.deepEqual(prpPlan(0x10000, 0x30000, 2 * PAGE, PAGE), {
      kind: 'direct',
      segments: [
        { address: 0x10000, lengthBytes: PAGE },
        { address: 0x30000, lengthBytes: PAGE },
      ],
    });
    assert.deepEqual(prpPlan(0x10000, 0x11000, 2 * PAGE, PAGE), { kind: 'direct', segments: [{ address: 0x10000, lengthBytes: 2 * PAGE }] });
  });

  it('maps an offset first page: PRP1 covers to the end of its page', () => {
    assert.deepEqual(prpPlan(0x10200, 0x30000, PAGE, PAGE), {
      kind: 'direct',
      segments: [
        { address: 0x10200, lengthBytes: 0xe00 },
        { address: 0x30000, lengthBytes: 0x200 },
      ],
    });
    const plan = listPlan(prpPlan(0x10200, 0x50000, 2 * PAGE, PAGE));
    assert.deepEqual(plan, { kind: 'list', firstSegment: { address: 0x10200, lengthBytes: 0xe00 }, listAddress: 0x50000, entriesNeeded: 2 });
  });

  it('uses a list of exactly one page for 1 + 512 pages', () => {
    const plan = listPlan(prpPlan(0x10000, 0x80000, 513 * PAGE, PAGE));
    assert.equal(plan.entriesNeeded, 512);
    assert.deepEqual(prpListFetches(plan.listAddress, plan.entriesNeeded, PAGE), [{ address: 0x80000, entries: 512, chained: false }]);
    const entries = Array.from({ length: 512 }, (_, i) => 0x100000 + 2 * i * PAGE);
    const result = prpListSegments(plan.firstSegment, entries, 512 * PAGE, PAGE);
    assert.equal(result.kind, 'segments');
    if (result.kind === 'segments') {
      assert.equal(result.segments.length, 513);
      assert.deepEqual(result.segments[512], { address: 0x100000 + 2 * 511 * PAGE, lengthBytes: PAGE });
    }
  });

  it('chains a list across two list pages (the last entry of a full page points on)', () => {
    const plan = listPlan(prpPlan(0x10000, 0x80000, 514 * PAGE - 100, PAGE));
    assert.equal(plan.entriesNeeded, 513);
    assert.deepEqual(prpListFetches(plan.listAddress, plan.entriesNeeded, PAGE), [
      { address: 0x80000, entries: 512, chained: true },
      { address: null, entries: 2, chained: false },
    ]);
    // data pages contiguous from 0x200000; chain pointer to 0x90000 in slot 511
    const data = Array.from({ length: 513 }, (_, i) => 0x200000 + i * PAGE);
    const entries = [...data.slice(0, 511), 0x90000, ...data.slice(511)];
    const result = prpListSegments(plan.firstSegment, entries, 513 * PAGE - 100, PAGE);
    assert.deepEqual(result, {
      kind: 'segments',
      segments: [
        { address: 0x10000, lengthBytes: PAGE },
        { address: 0x200000, lengthBytes: 513 * PAGE - 100 },
      ],
    });
  });

  it('supports a PRP2 list pointer with an offset into its page', () => {
    // 16 bytes left in the first list page: one data entry, then a chain pointer
    const fetches = prpListFetches(0x80000 + PAGE - 16, 3, PAGE);
    assert.deepEqual(fetches, [
      { address: 0x80000 + PAGE - 16, entries: 2, chained: true },
      { address: null, entries: 2, chained: false },
    ]);
    const result = prpListSegments({ address: 0x10000, lengthBytes: PAGE }, [0x20000, 0x90000, 0x21000, 0x40000], 3 * PAGE, PAGE, 0x80000 + PAGE - 16);
    assert.deepEqual(result, {
      kind: 'segments',
      segments: [
        { address: 0x10000, lengthBytes: PAGE },
        { address: 0x20000, lengthBytes: 2 * PAGE },
        { address: 0x40000, lengthBytes: PAGE },
      ],
    });
  });

  it('answers unaligned pointers with PRP Offset Invalid and zero length with Invalid Field', () => {
    expectError(prpPlan(0x10000, 0x20010, 2 * PAGE, PAGE), STATUS.PRP_OFFSET_INVALID.sc);
    expectError(prpPlan(0x10000, 0x20004, 3 * PAGE, PAGE), STATUS.PRP_OFFSET_INVALID.sc);
    expectError(prpPlan(0x10002, 0, 512, PAGE), STATUS.PRP_OFFSET_INVALID.sc);
    expectError(prpPlan(0x10000, 0, 0, PAGE), STATUS.INVALID_FIELD.sc);
    const first = { address: 0x10000, lengthBytes: PAGE };
    expectError(prpListSegments(first, [0x20000, 0x30800], 2 * PAGE, PAGE), STATUS.PRP_OFFSET_INVALID.sc);
    const chainedBadPointer = [...Array.from({ length: 511 }, (_, i) => i * PAGE), 0x90008, 0, 0];
    expectError(prpListSegments(first, chainedBadPointer, 513 * PAGE, PAGE), STATUS.PRP_OFFSET_INVALID.sc);
  });

  it('throws when fewer entries are supplied than the list needs', () => {
    assert.throws(
      () => prpListSegments({ address: 0, lengthBytes: PAGE }, [0x1000], 2 * PAGE, PAGE),
      (e: unknown) => e instanceof DconnectError && e.code === 'MALFORMED_PACKET',
    );
  });
});

describe('buildPrps', () => {
  const alloc = (base: number) => {
    let next = base;
    return () => (next += PAGE) - PAGE;
  };

  it('uses PRP2 = 0 for one page and the second page for two', () => {
    assert.deepEqual(buildPrps([{ address: 0x10200, lengthBytes: 0xe00 }], 0xe00, PAGE, alloc(0x80000)), { prp1: 0x10200, prp2: 0, listPages: [] });
    assert.deepEqual(buildPrps([{ address: 0x10000, lengthBytes: 3 * PAGE }], 2 * PAGE, PAGE, alloc(0x80000)), { prp1: 0x10000, prp2: 0x11000, listPages: [] });
  });

  it('builds a chained list when more than one list page is needed', () => {
    const built = buildPrps([{ address: 0x10000, lengthBytes: 600 * PAGE }], 600 * PAGE, PAGE, alloc(0x80000));
    assert.equal(built.prp2, 0x80000);
    assert.equal(built.listPages.length, 2);
    assert.equal(built.listPages[0].entries.length, 512);
    assert.equal(built.listPages[0].entries[511], 0x81000);
    assert.equal(built.listPages[1].entries.length, 599 - 511);
    const memory = new ListMemory(PAGE);
    memory.store(built);
    assert.deepEqual(deviceSegments(built.prp1, built.prp2, 600 * PAGE, PAGE, memory), [{ address: 0x10000, lengthBytes: 600 * PAGE }]);
  });

  it('rejects buffers PRPs cannot describe', () => {
    const bad = (segments: Segment[], length: number, allocate = alloc(0x80000)) =>
      assert.throws(() => buildPrps(segments, length, PAGE, allocate), (e: unknown) => e instanceof DconnectError && e.code === 'MALFORMED_PACKET');
    bad([{ address: 0x10000, lengthBytes: 0x800 }, { address: 0x20000, lengthBytes: PAGE }], 0x1000); // first ends mid-page
    bad([{ address: 0x10000, lengthBytes: PAGE }, { address: 0x20010, lengthBytes: PAGE }], 0x2000); // second starts mid-page
    bad([{ address: 0x10000, lengthBytes: PAGE }], 2 * PAGE); // too short
    bad([{ address: 0x10000, lengthBytes: 4 * PAGE }], 4 * PAGE, () => 0x80008); // unaligned list page
    bad([{ address: 0x10000, lengthBytes: PAGE }], 0);
  });
});

describe('PRP round trip (property)', () => {
  const arbCase = fc.constantFrom(16, 32, 64, 512, 4096).chain((pageBytes) =>
    fc.record({
      pageBytes: fc.constant(pageBytes),
      offset: fc.nat({ max: pageBytes / 4 - 1 }).map((d) => d * 4),
      length: fc.integer({ min: 1, max: pageBytes * 300 }),
      frames: fc.array(fc.record({ contiguous: fc.boolean(), frame: fc.nat({ max: 2 ** 28 }) }), { minLength: 302, maxLength: 302 }),
      extra: fc.nat({ max: 3 * pageBytes }),
    }),
  );

  /** A buffer of page frames (runs of contiguous frames become one segment) holding offset + length + extra bytes. */
  function scatteredBuffer(c: { pageBytes: number; offset: number; length: number; frames: { contiguous: boolean; frame: number }[]; extra: number }): Segment[] {
    const pageCount = Math.ceil((c.offset + c.length) / c.pageBytes);
    const segments: Segment[] = [];
    let frame = -1;
    for (let i = 0; i < pageCount; i++) {
      frame = i > 0 && c.frames[i].contiguous ? frame + 1 : c.frames[i].frame;
      segments.push({ address: frame * c.pageBytes, lengthBytes: c.pageBytes });
    }
    segments[0] = { address: segments[0].address + c.offset, lengthBytes: c.pageBytes - c.offset };
    segments[segments.length - 1].lengthBytes += c.extra; // buffer may be longer than the transfer
    return segments;
  }

  /** The first `length` bytes of a buffer as merged physical ranges. */
  function truncated(segments: Segment[], length: number): Segment[] {
    const out: Segment[] = [];
    for (let left = length, i = 0; left > 0; i++) {
      const n = Math.min(left, segments[i].lengthBytes);
      out.push({ address: segments[i].address, lengthBytes: n });
      left -= n;
    }
    return mergeSegments(out);
  }

  it('buildPrps then prpPlan + prpListFetches + prpListSegments reproduce the buffer', () => {
    fc.assert(
      fc.property(arbCase, (c) => {
        const buffer = scatteredBuffer(c);
        let nextList = 2 ** 45;
        const built = buildPrps(buffer, c.length, c.pageBytes, () => (nextList += c.pageBytes));
        const memory = new ListMemory(c.pageBytes);
        memory.store(built);
        assert.deepEqual(deviceSegments(built.prp1, built.prp2, c.length, c.pageBytes, memory), truncated(buffer, c.length));
        const perPage = c.pageBytes / 8;
        for (const p of built.listPages) assert.ok(p.entries.length <= perPage);
      }),
      { numRuns: 300 },
    );
  });
});
