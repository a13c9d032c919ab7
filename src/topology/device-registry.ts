import { DconnectError } from '../core/errors.js';
import type { FoundFunction } from '../host/enumeration.js';
import type { DeviceKind } from './device-kind.js';
import { dcBufferKind } from './kinds/dc-buffer.js';
import { nicKind } from './kinds/nic.js';
import { ssdKind } from './kinds/ssd.js';

/**
 * The device registry: every kind of device a box slot can hold, one entry each (`device-kind.ts`
 * says what an entry holds). The topology schema builds its slot union and its parameter blocks from
 * it, the builder constructs each slot's device through it, boot matches PCI functions to drivers
 * with it, and results name devices and their resources from it. A new kind is its own files and one
 * line here (docs/architecture.md, "Adding a device kind").
 *
 * The order is the order of the schema's union (its error lists the kinds so), of the topology's
 * parameter blocks, and of the host's device table: every device of the first kind, then the next.
 */
export const DEVICE_KINDS = [ssdKind, dcBufferKind, nicKind] as const;

/** A slot's `kind:`, as the registry knows them. */
export type DeviceKindName = (typeof DEVICE_KINDS)[number]['kind'];

/** Every entry, as the kind-independent code sees one. */
export const deviceKinds: readonly DeviceKind[] = DEVICE_KINDS;

/** The known slot kinds, in registry order. */
export const knownKinds = (): string[] => deviceKinds.map((k) => k.kind);

/** The entry of a slot kind; an unknown one is an error listing the known kinds. */
export function kindOf(kind: string): DeviceKind {
  const k = deviceKinds.find((x) => x.kind === kind);
  if (!k) throw new DconnectError('BAD_TOPOLOGY', `no device kind '${kind}'`, `a slot's kind is one of: ${knownKinds().join(', ')}`);
  return k;
}

/** The kind whose driver takes this PCI function (by class code, as Linux matches drivers), or undefined: no driver binds it. */
export function entryForFunction(fn: FoundFunction): DeviceKind | undefined {
  return deviceKinds.find((k) => k.driver.match(fn));
}

/**
 * A device's trace key split into its kind and its slot (`dcbuffer.box0.slot2` -> the DC buffer's
 * entry and `box0.slot2`); undefined for a key no device kind registers (links, ports, bridges).
 */
export function deviceTraceKey(key: string): { kind: DeviceKind; slot: string } | undefined {
  const dot = key.indexOf('.');
  if (dot < 0) return undefined;
  const prefix = key.slice(0, dot);
  const kind = deviceKinds.find((k) => k.tracePrefix === prefix);
  return kind ? { kind, slot: key.slice(dot + 1) } : undefined;
}

/**
 * A slot's parameters, as the builder gives them to its device and boot to its driver: the kind's
 * `defaults`, the topology's block (`ssd:`) and the slot's overrides (`slots[i].ssd`), field by field.
 */
export function slotParams(t: { name: string; boxes: readonly { name: string; slots: readonly { kind: string }[] }[] }, box: string, slot: number): unknown {
  const spec = t.boxes.find((b) => b.name === box)?.slots[slot];
  if (!spec) throw new DconnectError('BAD_TOPOLOGY', `topology ${t.name} has no slot ${box}.slot${slot}`);
  const k = kindOf(spec.kind);
  const field = (o: object) => (o as Record<string, object | undefined>)[k.paramsKey];
  return { ...k.defaults, ...field(t), ...field(spec) };
}
