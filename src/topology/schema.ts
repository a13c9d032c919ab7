import { z } from 'zod';
import { parseSize } from '../core/units.js';
import { SWITCH_FORWARDING, type SwitchForwarding } from '../ethernet/switch.js';
import { PCIE_GENERATIONS, PCIE_LANES, PCIE_SIZES } from '../pcie/link-params.js';

/** A byte size: a number or a string with a unit ("64MiB", "256GB"). */
const size = z.union([z.number().int().nonnegative(), z.string()]).transform((v, ctx) => {
  if (typeof v === 'number') return v;
  try {
    return parseSize(v);
  } catch (e) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: (e as Error).message });
    return z.NEVER;
  }
});
const positive = z.number().positive();
const nonNeg = z.number().nonnegative();
const count = z.number().int().positive();
const pcieSize = z.number().refine((v) => (PCIE_SIZES as readonly number[]).includes(v), { message: `must be one of ${PCIE_SIZES.join(', ')}` });

export const linkSchema = z
  .object({
    generation: z.number().refine((v) => (PCIE_GENERATIONS as readonly number[]).includes(v), { message: 'PCIe generation must be 1..5' }),
    lanes: z.number().refine((v) => (PCIE_LANES as readonly number[]).includes(v), { message: `lanes must be one of ${PCIE_LANES.join(', ')}` }),
    latencyNs: nonNeg,
  })
  .strict();

const creditsSchema = z
  .object({ postedHeaders: count, postedDataBytes: count, nonPostedHeaders: count, completionHeaders: count, completionDataBytes: count })
  .strict();

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

const slotSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('ssd'), serial: z.string().min(1).max(20), ssd: ssdSchema.partial().optional() }).strict(),
  z.object({ kind: z.literal('dc-buffer'), dcBuffer: dcBufferSchema.partial().optional() }).strict(),
]);

/** SSD slots per I/O box at most. */
export const MAX_SSDS_PER_BOX = 16;

export const topologySchema = z
  .object({
    name: z.string(),
    host: z
      .object({
        memoryBytes: size,
        memoryReadLatencyNs: nonNeg,
        readCompletionBytes: z.union([z.literal(64), z.literal(128)]),
        interruptLatencyNs: nonNeg,
        driverSubmitNs: nonNeg,
        queueEntries: z.number().int().min(4).max(4096),
        link: linkSchema,
      })
      .strict(),
    pcie: z.object({ mpsBytes: pcieSize, mrrsBytes: pcieSize, txQueueTlps: count, portCredits: creditsSchema }).strict(),
    expether: z
      .object({
        groupId: z.number().int().min(1).max(4000),
        bridgeLatencyNs: nonNeg,
        windowFrames: z.number().int().min(1).max(4096),
        retransmitTimeoutNs: positive,
        ackEveryFrames: count,
        ackDelayNs: nonNeg,
      })
      .strict(),
    ethernet: z
      .object({
        rateGbps: positive,
        switchHops: z.number().int().min(1).max(8),
        switchLatencyNs: nonNeg,
        /** What switchLatencyNs measures: last bit in (store-and-forward, the default) or first bit in (cut-through) to first bit out. */
        switchForwarding: z
          .string()
          .refine((v): v is SwitchForwarding => (SWITCH_FORWARDING as readonly string[]).includes(v), {
            message: `must be ${SWITCH_FORWARDING.join(' or ')} (what switchLatencyNs measures: from the last or the first bit in, to the first bit out)`,
          })
          .default('store-and-forward'),
        switchBufferBytes: size,
        cableLatencyNs: nonNeg,
      })
      .strict(),
    ssd: ssdSchema,
    dcBuffer: dcBufferSchema,
    boxes: z
      .array(
        z
          .object({
            name: z.string().regex(/^[A-Za-z][\w-]*$/, 'a box name is a letter then letters, digits, _ or - (it names counters and switches)'),
            slots: z
              .array(slotSchema)
              .min(1)
              .max(32)
              .refine((slots) => slots.filter((x) => x.kind === 'ssd').length <= MAX_SSDS_PER_BOX, { message: `a box holds at most ${MAX_SSDS_PER_BOX} SSDs` }),
          })
          .strict(),
      )
      .min(1)
      .max(8)
      .refine((boxes) => new Set(boxes.map((b) => b.name)).size === boxes.length, { message: 'box names must differ' }),
    copy: z.object({ chunkBytes: size, depth: z.number().int().min(1).max(64) }).strict(),
  })
  .strict();

export type Topology = z.infer<typeof topologySchema>;
export type LinkConfig = z.infer<typeof linkSchema>;
export type SsdConfig = z.infer<typeof ssdSchema>;
export type DcBufferConfig = z.infer<typeof dcBufferSchema>;
