import { z } from 'zod';
import { NVME_SSD_ID, NvmeSsd } from '../../devices/nvme-ssd.js';
import { NvmeDriver } from '../../host/nvme-driver.js';
import type { BlockDevice } from '../../host/dc/manager.js';
import { driveCapacity, formatBytes } from '../../core/units.js';
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
    /** A Controller Memory Buffer (NVMe 1.2+, in BAR2): its bytes, 0 or absent for none (the paper's drive predates NVMe 1.2), its memory's rate and the controller's latency to it. */
    cmbSizeBytes: size.refine((v) => v === 0 || (v >= 4096 && (v & (v - 1)) === 0), { message: 'must be 0 (no CMB) or a power of two >= 4096' }).optional(),
    cmbMBps: positive.optional(),
    cmbLatencyNs: nonNeg.optional(),
  })
  .strict();

/** A CMB's rate and latency when a topology gives only its size (reasons in docs/calibration.md, "The NVMe CMB"). */
export const CMB_DEFAULTS = { cmbMBps: 3200, cmbLatencyNs: 100 } as const;

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
    return new NvmeSsd(ctx.name, ctx.scheduler, { ...p, cmbMBps: p.cmbMBps ?? CMB_DEFAULTS.cmbMBps, cmbLatencyNs: p.cmbLatencyNs ?? CMB_DEFAULTS.cmbLatencyNs, mpsBytes: t.pcie.mpsBytes, mrrsBytes: t.pcie.mrrsBytes, serial: ctx.spec.serial, model: 'OCZ Z-Drive M84 (model)' }, link.down, ctx.rng.stream(`${ctx.name}.ssd`), p.link, ctx.trace, ctx.options.storeFor?.(ctx.name, p.capacityBytes));
  },
  driver: {
    match: pciMatch({ classCode: NVME_CLASS }),
    *probe(c) {
      const driver = new NvmeDriver(c.scheduler, c.rootComplex, c.allocator, c.fn.id, c.fn.bars[0].address, c.msiVector(), { queueEntries: c.host.queueEntries, submitCpuNs: c.host.driverSubmitNs, maxTransferBytes: c.maxTransferBytes });
      const ns = yield* driver.init();
      const dev: BlockDevice = { name: c.name, kind: 'ssd', serial: ns.serial, model: ns.model, capacityBytes: ns.blocks * ns.blockBytes, blockBytes: ns.blockBytes, bdf: c.fn.bdf, box: c.slot.box, slot: c.slot.slot, bar0: c.fn.bars[0].address, driver };
      c.manager.add(dev);
      c.manager.addEndpoint(dev);
      // A controller with no BAR besides BAR0 has no CMB (CMBLOC.BIR names another BAR): asking only
      // then leaves the bring-up of CMB-less drives, every preset's, exactly as it was.
      const cmb = c.fn.bars.length > 1 ? yield* driver.findCmb(c.fn.bars) : null;
      if (cmb) c.manager.addRelay({ name: `${c.name} CMB`, via: 'cmb', device: c.name, box: c.slot.box, slot: c.slot.slot, busAddress: cmb.busAddress, sizeBytes: cmb.sizeBytes });
    },
    devices: (m) =>
      m.devicesOf<BlockDevice>('ssd').map((d) => {
        const cmb = m.relays().find((r) => r.via === 'cmb' && r.device === d.name);
        return { name: d.name, box: d.box, slot: d.slot, bdf: d.bdf, capacityBytes: d.capacityBytes, bar0: d.bar0, serial: d.serial, ...(cmb ? { relayBytes: cmb.sizeBytes } : {}) };
      }),
  },
  columns: (d) => ({ capacity: driveCapacity(d.capacityBytes), id: d.relayBytes ? `${d.serial} (CMB ${formatBytes(d.relayBytes)})` : (d.serial ?? '-') }),
  name: blockName,
  capabilities: ['endpoint', 'relay'],
  tracePrefix: 'ssd',
  label: (device) => device,
  resources: (label, c) => [
    ...(c.cmbBusyPs > 0 ? [{ resource: `${label} CMB`, busyPs: c.cmbBusyPs }] : []),
    ...(c.readBusyPs > 0 ? [{ resource: `${label} flash read`, busyPs: c.readBusyPs }] : []),
    ...(c.writeBusyPs > 0 ? [{ resource: `${label} flash write`, busyPs: c.writeBusyPs }] : []),
  ],
};
