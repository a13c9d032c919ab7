import { z } from 'zod';
import { NVME_SSD_ID, NvmeSsd } from '../../devices/nvme-ssd.js';
import { NvmeDriver } from '../../host/nvme-driver.js';
import { pciMatch, type DeviceKind } from '../device-kind.js';
import { count, linkSchema, nonNeg, positive, size, slotGroup } from '../schema-parts.js';

/** The NVMe-like SSD (devices/nvme-ssd.ts) and its driver (host/nvme-driver.ts). */

/** NVM Express I/O controller class code (base 01 mass storage, sub 08 NVM, interface 02 NVMe): any vendor's binds the NVMe driver. */
export const NVME_CLASS = NVME_SSD_ID.classCode;

/** SSD slots per I/O box at most. */
export const MAX_SSDS_PER_BOX = 16;

export const ssdSchema = z
  .object({
    capacityBytes: size,
    blockBytes: z.union([z.literal(512), z.literal(4096)]),
    writeMBps: positive,
    readMBps: positive,
    readLatencyUs: nonNeg,
    writeLatencyUs: nonNeg,
    latencyJitterFraction: z.number().min(0).max(0.9),
    maxActiveCommands: count,
    streamUnitBytes: size,
    maxQueueEntries: count,
    maxReadTags: z.number().int().min(1).max(256),
    link: linkSchema,
  })
  .strict();

const ssdSlotSchema = z.object({ kind: z.literal('ssd'), serial: z.string().min(1).max(20), group: slotGroup, ssd: ssdSchema.partial().optional() }).strict();

export type SsdConfig = z.infer<typeof ssdSchema>;

/** Block device names in enumeration order, as the paper's host named them: sda, sdb, ... sdz, sda1, ... */
export function blockName(i: number): string {
  return `sd${String.fromCharCode(97 + (i % 26))}${i >= 26 ? Math.floor(i / 26) : ''}`;
}

export const ssdKind: DeviceKind<'ssd', 'ssd', typeof ssdSchema, typeof ssdSlotSchema> = {
  kind: 'ssd',
  paramsKey: 'ssd',
  params: ssdSchema,
  slot: ssdSlotSchema,
  perBox: { max: MAX_SSDS_PER_BOX, noun: 'SSDs' },
  build(ctx) {
    const p = ctx.params;
    const link = ctx.mkLink(p.link);
    const t = ctx.topology;
    return new NvmeSsd(ctx.name, ctx.scheduler, { ...p, mpsBytes: t.pcie.mpsBytes, mrrsBytes: t.pcie.mrrsBytes, serial: ctx.spec.serial, model: 'OCZ Z-Drive M84 (model)' }, link.down, ctx.rng.stream(`${ctx.name}.ssd`), p.link, ctx.trace, ctx.options.storeFor?.(ctx.name, p.capacityBytes));
  },
  driver: {
    match: pciMatch({ classCode: NVME_CLASS }),
    *probe(c) {
      const driver = new NvmeDriver(c.scheduler, c.rootComplex, c.allocator, c.fn.id, c.fn.bars[0].address, c.msiVector(), { queueEntries: c.host.queueEntries, submitCpuNs: c.host.driverSubmitNs, maxTransferBytes: c.maxTransferBytes });
      const ns = yield* driver.init();
      c.manager.addBlockDevice({ name: c.name, kind: 'ssd', serial: ns.serial, model: ns.model, capacityBytes: ns.blocks * ns.blockBytes, blockBytes: ns.blockBytes, bdf: c.fn.bdf, box: c.slot.box, slot: c.slot.slot, bar0: c.fn.bars[0].address, driver });
    },
    devices: (m) => m.blockDevices().map((d) => ({ name: d.name, box: d.box, slot: d.slot, bdf: d.bdf, capacityBytes: d.capacityBytes, bar0: d.bar0, serial: d.serial })),
  },
  name: blockName,
  tracePrefix: 'ssd',
  label: (device) => device,
  resources: (label, c) => [
    ...(c.readBusyPs > 0 ? [{ resource: `${label} flash read`, busyPs: c.readBusyPs }] : []),
    ...(c.writeBusyPs > 0 ? [{ resource: `${label} flash write`, busyPs: c.writeBusyPs }] : []),
  ],
};
