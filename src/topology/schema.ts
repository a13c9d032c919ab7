import { z } from 'zod';
import { JUMBO_MAX_PAYLOAD_BYTES, MAX_PAYLOAD_BYTES, wireBytes } from '../ethernet/frame.js';
import { SWITCH_FORWARDING, type SwitchForwarding } from '../ethernet/switch.js';
import { EXPETHER_HEADER_BYTES } from '../expether/pdu.js';
import { DEVICE_KINDS, deviceKinds } from './device-registry.js';
import { count, groupId, linkSchema, nonNeg, pcieSize, positive, size } from './schema-parts.js';

export { linkSchema, type LinkConfig } from './schema-parts.js';
export { MAX_SSDS_PER_BOX, ssdSchema, type SsdConfig } from './kinds/ssd.js';
export { dcBufferSchema, type DcBufferConfig } from './kinds/dc-buffer.js';

const creditsSchema = z
  .object({ postedHeaders: count, postedDataBytes: count, nonPostedHeaders: count, completionHeaders: count, completionDataBytes: count })
  .strict();

type Kinds = typeof DEVICE_KINDS;
/** The kinds' slot schemas, as a tuple (what z.discriminatedUnion takes). */
type SlotSchemas<T extends readonly unknown[]> = { -readonly [I in keyof T]: T[I] extends { slot: infer S } ? S : never };

/** A box slot: one of the registry's kinds, told apart by `kind` (each kind's own slot schema). */
const slotSchema = z.discriminatedUnion('kind', DEVICE_KINDS.map((k) => k.slot) as unknown as SlotSchemas<Kinds>);

/** A kind's top-level block: its `block` schema, else its parameters. */
type BlockOf<K> = K extends { block?: infer B; params: infer P } ? (unknown extends B ? P : B) : never;

/** Each kind's block of parameters at the top level (`ssd:`, `dcBuffer:`), in registry order. */
const kindBlocks = Object.fromEntries(DEVICE_KINDS.map((k) => [k.paramsKey, k.block ?? k.params])) as { [K in Kinds[number] as K['paramsKey']]: BlockOf<K> };

export const hostSchema = z
  .object({
    memoryBytes: size,
    memoryReadLatencyNs: nonNeg,
    readCompletionBytes: z.union([z.literal(64), z.literal(128), z.literal(256), z.literal(512), z.literal(1024), z.literal(2048), z.literal(4096)]),
    interruptLatencyNs: nonNeg,
    driverSubmitNs: nonNeg,
    queueEntries: z.number().int().min(4).max(4096),
    link: linkSchema,
  })
  .strict();

/** The first host's name: its components keep the names they had before there could be more (`hostLink`, `bridge.host`, `host.rootComplex`). */
export const FIRST_HOST = 'host';
const NAME = /^[A-Za-z][\w-]*$/;

/**
 * A host besides the first, on the same switches, in its own ExpEther group: its name, its group, and
 * any fields of the `host` block it changes (the rest are the first host's).
 */
const extraHostSchema = hostSchema
  .partial()
  .extend({
    name: z.string().regex(NAME, 'a host name is a letter then letters, digits, _ or - (it names counters and cables)'),
    groupId,
  })
  .strict();

/** The longest TLP header (4DW, no digest): a memory request above 4 GiB. */
const MAX_TLP_HEADER_BYTES = 16;

/** Slots one host's virtual switch can hold: device numbers on its internal bus. */
export const MAX_SLOTS_PER_GROUP = 32;

export const topologySchema = z
  .object({
    name: z.string(),
    host: hostSchema,
    /** Hosts besides the first (`host`, in expether.groupId), each in its own group; absent: one host. */
    extraHosts: z.array(extraHostSchema).min(1).max(7).optional(),
    pcie: z.object({ mpsBytes: pcieSize, mrrsBytes: pcieSize, txQueueTlps: count, portCredits: creditsSchema }).strict(),
    expether: z
      .object({
        groupId,
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
        /** Largest frame payload (the MTU): 1500, standard Ethernet; up to 9000, jumbo frames. Every port's limit. */
        maxPayloadBytes: z.number().int().min(MAX_PAYLOAD_BYTES).max(JUMBO_MAX_PAYLOAD_BYTES).default(MAX_PAYLOAD_BYTES),
      })
      .strict(),
    ...kindBlocks,
    boxes: z
      .array(
        z
          .object({
            name: z.string().regex(NAME, 'a box name is a letter then letters, digits, _ or - (it names counters and switches)'),
            slots: z
              .array(slotSchema)
              .min(1)
              .max(32)
              .superRefine((slots, ctx) => {
                for (const k of deviceKinds) {
                  if (k.perBox && slots.filter((x) => x.kind === k.kind).length > k.perBox.max) ctx.addIssue({ code: z.ZodIssueCode.custom, message: `a box holds at most ${k.perBox.max} ${k.perBox.noun}` });
                }
              }),
          })
          .strict(),
      )
      .min(1)
      .max(8)
      .refine((boxes) => new Set(boxes.map((b) => b.name)).size === boxes.length, { message: 'box names must differ' }),
    copy: z.object({ chunkBytes: size, depth: z.number().int().min(1).max(64) }).strict(),
  })
  .strict()
  .superRefine((t, ctx) => {
    // One TLP is one frame: the largest (a 4DW-header MWr or a CplD of MPS bytes) and the ExpEther header must fit the MTU.
    const largest = EXPETHER_HEADER_BYTES + MAX_TLP_HEADER_BYTES + t.pcie.mpsBytes;
    if (largest > t.ethernet.maxPayloadBytes) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['pcie', 'mpsBytes'], message: `a TLP of ${t.pcie.mpsBytes} B of payload is a ${largest}-byte ExpEther frame payload (${MAX_TLP_HEADER_BYTES} B of TLP header, ${EXPETHER_HEADER_BYTES} B of ExpEther header), more than ethernet.maxPayloadBytes ${t.ethernet.maxPayloadBytes}: lower pcie.mpsBytes or raise ethernet.maxPayloadBytes (jumbo frames, up to ${JUMBO_MAX_PAYLOAD_BYTES})` });
    }
    // Above the RCB (64 or 128) the root complex combines completions, which PCIe caps at the MPS of the path.
    if (t.host.readCompletionBytes > 128 && t.host.readCompletionBytes > t.pcie.mpsBytes) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['host', 'readCompletionBytes'], message: `completions of ${t.host.readCompletionBytes} B exceed pcie.mpsBytes ${t.pcie.mpsBytes}: a completion carries at most MPS; give 64, 128 or a power of two up to ${t.pcie.mpsBytes}` });
    }
    // A port advertising fewer data credits than one TLP of MPS bytes could never take it (PCIe requires at least MPS).
    for (const k of ['postedDataBytes', 'completionDataBytes'] as const) {
      if (t.pcie.portCredits[k] < t.pcie.mpsBytes) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['pcie', 'portCredits', k], message: `${t.pcie.portCredits[k]} B of credits cannot take one TLP of pcie.mpsBytes ${t.pcie.mpsBytes} B: give at least ${t.pcie.mpsBytes}` });
    }
    if (t.ethernet.switchBufferBytes < wireBytes(t.ethernet.maxPayloadBytes)) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['ethernet', 'switchBufferBytes'], message: `an output buffer of ${t.ethernet.switchBufferBytes} B cannot hold one ${t.ethernet.maxPayloadBytes}-byte-payload frame (${wireBytes(t.ethernet.maxPayloadBytes)} B on the wire)` });
    }
    // Hosts and groups: each host its own group, each slot a group some host has.
    const extra = t.extraHosts ?? [];
    const boxNames = new Set(t.boxes.map((b) => b.name));
    const groups = new Map<number, string>([[t.expether.groupId, FIRST_HOST]]);
    const names = new Set<string>([FIRST_HOST]);
    extra.forEach((h, i) => {
      if (names.has(h.name)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['extraHosts', i, 'name'], message: `host name '${h.name}' is taken (the first host is '${FIRST_HOST}'; host names must differ)` });
      else if (boxNames.has(h.name)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['extraHosts', i, 'name'], message: `host name '${h.name}' is also a box's name (both name cables and nodes)` });
      names.add(h.name);
      const other = groups.get(h.groupId);
      if (other !== undefined) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['extraHosts', i, 'groupId'], message: `group ${h.groupId} is already host '${other}''s: each host has its own ExpEther group` });
      else groups.set(h.groupId, h.name);
    });
    const perGroup = new Map<number, number>();
    t.boxes.forEach((b, bi) =>
      b.slots.forEach((s, si) => {
        const g = s.group ?? t.expether.groupId;
        perGroup.set(g, (perGroup.get(g) ?? 0) + 1);
        if (!groups.has(g)) {
          const have = [...groups].map(([id, h]) => `${id} (${h})`).join(', ');
          ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['boxes', bi, 'slots', si, 'group'], message: `group ${g} has no host: no host would enumerate this slot (groups with a host: ${have})` });
        }
      }),
    );
    // Clients on NICs' networks are named in moves (net:NAME) and name their cables and nodes: one name, one client.
    const clientAt = new Map<string, string>();
    t.boxes.forEach((b, bi) =>
      b.slots.forEach((s, si) => {
        if (s.kind !== 'nic') return;
        s.clients.forEach((c, ci) => {
          const where = `${b.name}.slot${si}`;
          const taken = clientAt.get(c.name) ?? (names.has(c.name) || boxNames.has(c.name) ? 'a host or box' : undefined);
          if (taken !== undefined) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['boxes', bi, 'slots', si, 'clients', ci, 'name'], message: `client name '${c.name}' is taken (by ${taken}); clients, hosts and boxes need names of their own` });
          clientAt.set(c.name, `the client of ${where}`);
        });
      }),
    );
    for (const [g, n] of perGroup) {
      if (n > MAX_SLOTS_PER_GROUP) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['boxes'], message: `group ${g} has ${n} slots; a host's virtual switch holds at most ${MAX_SLOTS_PER_GROUP} (device numbers on its internal bus)` });
    }
  });

export type Topology = z.infer<typeof topologySchema>;
export type HostConfig = z.infer<typeof hostSchema>;
export type SlotConfig = Topology['boxes'][number]['slots'][number];

/** One host of a topology: its name, its ExpEther group and its parameters (an extra host's overrides applied). */
export interface HostSpec {
  name: string;
  groupId: number;
  config: HostConfig;
}

/** Every host of a topology, the first (`host`, in expether.groupId) first. */
export function hostsOf(t: Topology): HostSpec[] {
  return [
    { name: FIRST_HOST, groupId: t.expether.groupId, config: t.host },
    ...(t.extraHosts ?? []).map(({ name, groupId, ...over }) => {
      const config: HostConfig = { ...t.host };
      for (const [k, v] of Object.entries(over)) if (v !== undefined) (config as Record<string, unknown>)[k] = v;
      return { name, groupId, config };
    }),
  ];
}

/** A slot's ExpEther group: its own, or the first host's. */
export function groupOf(t: Topology, slot: SlotConfig): number {
  return slot.group ?? t.expether.groupId;
}
