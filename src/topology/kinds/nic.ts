import { z } from 'zod';
import { EthPort } from '../../ethernet/port.js';
import { MacPort } from '../../ethernet/mac-port.js';
import { formatMac } from '../../ethernet/frame.js';
import { EthernetNic } from '../../devices/nic/ethernet-nic.js';
import { NIC_CLASS } from '../../devices/nic/nic-defs.js';
import { ClientNode } from '../../net/client-node.js';
import { BT_FRAME_HEADER_BYTES, BT_MAX_PAYLOAD_BYTES } from '../../net/block-transfer.js';
import { NicDriver } from '../../host/nic-driver.js';
import type { NicDevice } from '../../host/dc/manager.js';
import { pciMatch, type DeviceKind } from '../device-kind.js';
import { count, linkSchema, nonNeg, size, slotGroup } from '../schema-parts.js';

/**
 * The NIC (devices/nic/), its driver (host/nic-driver.ts) and its network: a switch outside the box
 * joining the NIC's Ethernet port to the slot's clients (net/client-node.ts), which the fabric holds
 * as nodes (`fabric.nodes`, by client name).
 */

export const clientSchema = z
  .object({
    perFrameCpuNs: nonNeg,
    windowFrames: count,
    creditEveryFrames: count,
  })
  .strict();

export const nicSchema = z
  .object({
    txFifoBytes: size,
    rxFifoBytes: size,
    descFetchEntries: count,
    rxDescCacheEntries: count,
    maxReadTags: z.number().int().min(1).max(256),
    /** Descriptors per ring the driver sets up. */
    ringEntries: z.number().int().min(8).max(4096).refine((v) => v % 8 === 0, { message: 'must be a multiple of 8' }),
    interruptIntervalNs: nonNeg,
    /** Block transfer payload per frame, bytes: a power of two, so a drive's 4 KiB pages are whole frames. */
    framePayloadBytes: z.number().int().refine((v) => v >= 64 && v <= BT_MAX_PAYLOAD_BYTES && (v & (v - 1)) === 0, { message: `must be a power of two from 64 to ${BT_MAX_PAYLOAD_BYTES}` }),
    /** Host CPU per frame in the transfer stack and driver, ns. */
    hostPacketCpuNs: nonNeg,
    /** Every client's stack on the NIC's network (a client's own `client:` overrides some fields). */
    client: clientSchema,
    link: linkSchema,
  })
  .strict();

const NAME = /^[A-Za-z][\w-]*$/;
const clientEntry = z.object({ name: z.string().regex(NAME, 'a client name is a letter then letters, digits, _ or -'), client: clientSchema.partial().optional() }).strict();

const nicSlotSchema = z
  .object({
    kind: z.literal('nic'),
    group: slotGroup,
    nic: nicSchema.partial().optional(),
    /** The clients on the NIC's network (named `net:NAME` in moves). */
    clients: z.array(clientEntry).min(1).max(16),
  })
  .strict();

export type NicConfig = z.infer<typeof nicSchema>;
export type ClientConfig = z.infer<typeof clientSchema>;

/** The defaults every NIC slot starts from (a topology's `nic:` block replaces them field by field), with the reasons in docs/calibration.md. */
export const NIC_DEFAULTS: NicConfig = {
  txFifoBytes: 160 * 1024,
  rxFifoBytes: 512 * 1024,
  descFetchEntries: 16,
  rxDescCacheEntries: 64,
  maxReadTags: 32,
  ringEntries: 512,
  interruptIntervalNs: 20_000,
  framePayloadBytes: 1024,
  hostPacketCpuNs: 250,
  client: { perFrameCpuNs: 300, windowFrames: 256, creditEveryFrames: 32 },
  link: { generation: 1, lanes: 8, latencyNs: 100 },
};


/** MACs: the NIC's from NEC's OUI (00:60:B9) in a block of its own; clients' locally administered (02:...). */
const NIC_MAC_BASE = 0x0060_b920_0000;
const CLIENT_MAC_BASE = 0x0200_0000_0000;

const nicBlock = nicSchema.partial().optional();

export const nicKind: DeviceKind<'nic', 'nic', typeof nicSchema, typeof nicSlotSchema, typeof nicBlock> = {
  kind: 'nic',
  paramsKey: 'nic',
  params: nicSchema,
  // Topologies without a NIC leave the block out: a NIC slot starts from NIC_DEFAULTS.
  block: nicBlock,
  defaults: NIC_DEFAULTS,
  slot: nicSlotSchema,
  perBox: { max: 4, noun: 'NICs' },
  build(ctx) {
    const p = ctx.params;
    const t = ctx.topology;
    const link = ctx.mkLink(p.link);
    const box = t.boxes.findIndex((b) => b.name === ctx.box);
    const id = box * 256 + ctx.slot;
    const sw = ctx.mkSwitch(`net.${ctx.name}`, 1 + ctx.spec.clients.length);
    const eth = new EthPort(`${ctx.name}.mac`, ctx.scheduler, ctx.ethParams, null, ctx.trace);
    ctx.connect(eth, sw.ports[0], t.ethernet.cableLatencyNs);
    const nic = new EthernetNic(ctx.name, ctx.scheduler, { ...p, mpsBytes: t.pcie.mpsBytes, mrrsBytes: t.pcie.mrrsBytes }, link.down, new MacPort(eth), NIC_MAC_BASE + id, p.link, ctx.trace);
    ctx.spec.clients.forEach((c, i) => {
      const cp = { ...p.client, ...c.client };
      const ceth = new EthPort(c.name, ctx.scheduler, ctx.ethParams, null, ctx.trace);
      ctx.connect(ceth, sw.ports[1 + i], t.ethernet.cableLatencyNs);
      ctx.addNode(c.name, new ClientNode(c.name, ctx.scheduler, cp, new MacPort(ceth), CLIENT_MAC_BASE + id * 256 + i + 1, ctx.trace));
    });
    return nic;
  },
  driver: {
    match: pciMatch({ classCode: NIC_CLASS }),
    *probe(c) {
      const p = c.params;
      const driver = new NicDriver(c.scheduler, c.rootComplex, c.allocator, c.fn.id, c.fn.bars[0].address, c.msiVector(), {
        ringEntries: p.ringEntries,
        rxPacketBufferBytes: Math.max(1024, p.framePayloadBytes),
        headerSplitBytes: BT_FRAME_HEADER_BYTES,
        interruptIntervalNs: p.interruptIntervalNs,
        submitCpuNs: c.host.driverSubmitNs,
      });
      const mac = yield* driver.init();
      const dev: NicDevice = { name: c.name, kind: 'nic', mac, bdf: c.fn.bdf, box: c.slot.box, slot: c.slot.slot, bar0: c.fn.bars[0].address, driver };
      c.manager.add(dev);
    },
    devices: (m) => m.devicesOf<NicDevice>('nic').map((n) => ({ name: n.name, box: n.box, slot: n.slot, bdf: n.bdf, capacityBytes: 0, bar0: n.bar0, mac: formatMac(n.mac) })),
  },
  columns: (d) => ({ capacity: '-', id: d.mac !== undefined ? `MAC ${d.mac}` : '-' }),
  capabilities: [],
  name: (i) => `nic${i}`,
  tracePrefix: 'nic',
  label: (device) => device,
  resources: () => [],
};
