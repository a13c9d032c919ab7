import { z } from 'zod';
import { parseSize } from '../core/units.js';
import { PCIE_GENERATIONS, PCIE_LANES, PCIE_SIZES } from '../pcie/link-params.js';

/**
 * The zod pieces the topology schema (`schema.ts`) and the device kinds (`kinds/*.ts`) both build
 * from, kept apart so that a kind's file can use them without importing the schema that is composed
 * from the kinds.
 */

/** A byte size: a number or a string with a unit ("64MiB", "256GB"). */
export const size = z.union([z.number().int().nonnegative(), z.string()]).transform((v, ctx) => {
  if (typeof v === 'number') return v;
  try {
    return parseSize(v);
  } catch (e) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: (e as Error).message });
    return z.NEVER;
  }
});
export const positive = z.number().positive();
export const nonNeg = z.number().nonnegative();
export const count = z.number().int().positive();
export const pcieSize = z.number().refine((v) => (PCIE_SIZES as readonly number[]).includes(v), { message: `must be one of ${PCIE_SIZES.join(', ')}` });

/** A PCIe link: generation, lanes and one-way latency (the host's link, and every slot device's). */
export const linkSchema = z
  .object({
    generation: z.number().refine((v) => (PCIE_GENERATIONS as readonly number[]).includes(v), { message: 'PCIe generation must be 1..5' }),
    lanes: z.number().refine((v) => (PCIE_LANES as readonly number[]).includes(v), { message: `lanes must be one of ${PCIE_LANES.join(', ')}` }),
    latencyNs: nonNeg,
  })
  .strict();

/** An ExpEther group id: the 802.1Q VLAN id its frames carry. */
export const groupId = z.number().int().min(1).max(4000);

/** A slot's ExpEther group (default expether.groupId, the first host's): only that group's host enumerates it. Every slot kind has it. */
export const slotGroup = groupId.optional();

export type LinkConfig = z.infer<typeof linkSchema>;
