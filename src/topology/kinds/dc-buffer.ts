import { z } from 'zod';
import { DC_BUFFER_ID, DcBuffer } from '../../devices/dc-buffer.js';

export { DC_BUFFER_ID };
import { pciMatch, type DeviceKind } from '../device-kind.js';
import type { DcBufferDevice } from '../../host/dc/manager.js';
import { formatBytes } from '../../core/units.js';
import { count, linkSchema, nonNeg, positive, size, slotGroup } from '../schema-parts.js';

/** The DC buffer (devices/dc-buffer.ts), the paper's Fig. 4: no driver of its own, the host only records it as a relay. */


export const dcBufferSchema = z
  .object({
    sizeBytes: size.refine((v) => v >= 4096 && (v & (v - 1)) === 0, { message: 'must be a power of two >= 4096' }),
    ddrMBps: positive,
    ddrLatencyNs: nonNeg,
    rxRequestFifoEntries: count,
    pendingReadFifoEntries: count,
    link: linkSchema,
  })
  .strict();

const dcBufferSlotSchema = z.object({ kind: z.literal('dc-buffer'), group: slotGroup, dcBuffer: dcBufferSchema.partial().optional() }).strict();

export type DcBufferConfig = z.infer<typeof dcBufferSchema>;

export const dcBufferKind: DeviceKind<'dc-buffer', 'dcBuffer', typeof dcBufferSchema, typeof dcBufferSlotSchema> = {
  kind: 'dc-buffer',
  paramsKey: 'dcBuffer',
  params: dcBufferSchema,
  slot: dcBufferSlotSchema,
  build(ctx) {
    const p = ctx.params;
    const link = ctx.mkLink(p.link);
    return new DcBuffer(ctx.name, ctx.scheduler, { ...p, mpsBytes: ctx.topology.pcie.mpsBytes }, link.down, p.link, ctx.trace);
  },
  driver: {
    // A memory controller is a common class: the vendor and device id say it is the DC buffer.
    match: pciMatch(DC_BUFFER_ID),
    // Nothing to bring up (no registers to set): the host records the buffer.
    *probe(c) {
      const bar = c.fn.bars[0];
      const dev: DcBufferDevice = { name: c.name, kind: 'dc-buffer', sizeBytes: bar.sizeBytes, bdf: c.fn.bdf, box: c.slot.box, slot: c.slot.slot, bar0: bar.address };
      c.manager.add(dev);
      c.manager.addRelay({ name: c.name, via: 'dc-buffer', device: c.name, box: c.slot.box, slot: c.slot.slot, busAddress: bar.address, sizeBytes: bar.sizeBytes });
    },
    devices: (m) => m.devicesOf<DcBufferDevice>('dc-buffer').map((b) => ({ name: b.name, box: b.box, slot: b.slot, bdf: b.bdf, capacityBytes: b.sizeBytes, bar0: b.bar0 })),
  },
  columns: (d) => ({ capacity: formatBytes(d.capacityBytes), id: '-' }),
  capabilities: ['relay'],
  name: (i) => `dcbuf${i}`,
  tracePrefix: 'dcbuffer',
  label: (device) => `${device} DDR`,
  resources: (label, c) => [{ resource: label, busyPs: c.ddrBusyPs }],
};
