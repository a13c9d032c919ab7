import type { z } from 'zod';
import type { Digestible } from '../core/digest.js';
import type { RngFactory } from '../core/rng.js';
import type { Scheduler } from '../core/scheduler.js';
import type { TraceRegistry } from '../core/trace.js';
import type { EthPort, EthPortParams } from '../ethernet/port.js';
import type { EthSwitch } from '../ethernet/switch.js';
import type { RootComplex } from '../devices/root-complex.js';
import type { DcManager } from '../host/dc/manager.js';
import type { FoundFunction } from '../host/enumeration.js';
import type { HostMemoryAllocator } from '../host/host-memory-allocator.js';
import type { Seq } from '../host/coroutine.js';
import type { IoSideBridge } from '../expether/io-bridge.js';
import type { ConfigSpace } from '../pcie/config-space.js';
import type { PcieLink } from '../pcie/link.js';
import type { FabricOptions } from './fabric-options.js';
import type { LinkConfig } from './schema-parts.js';

/**
 * What a kind reads of the whole topology and of the booting host. Structural, not schema.ts's
 * `Topology` and `HostConfig`: the schema builds its slot union from the kinds (device-registry.ts),
 * so a kind that imported it would close an import cycle. The whole types satisfy these; a kind that
 * needs another field adds it here.
 */
export interface KindTopology {
  pcie: { mpsBytes: number; mrrsBytes: number };
  ethernet: { cableLatencyNs: number };
  boxes: readonly { name: string }[];
}
export interface KindHost {
  queueEntries: number;
  driverSubmitNs: number;
}

/** A box slot of a built fabric (the builder's `SlotInstance`, whose `kind` is one of the registry's names). */
export interface KindSlot<Kind extends string = string> {
  box: string;
  slot: number;
  /** Its ExpEther group (the slot's `group`, default expether.groupId): the host of that group enumerates it. */
  group: number;
  /** Which kind of device it holds (the slot's `kind:`; device-registry.ts). */
  kind: Kind;
  bridge: IoSideBridge;
  link: PcieLink;
  /** Its device, built by its kind's entry; narrow with `instanceof` (`NvmeSsd`: its store is in memory unless the builder was given `storeFor`, live mode's files). */
  device: SlotDevice;
}

/**
 * What every device in a box slot is, to the code that does not care which kind it is (the fast
 * path's digest, the fabric's slot table): a named PCIe function with counters. Code that needs one
 * kind narrows with `instanceof` (`slot.device instanceof NvmeSsd`).
 */
export interface SlotDevice extends Digestible {
  /** Its slot's name, `box0.slot2`. */
  readonly name: string;
  /** Its PCIe configuration space. */
  readonly config: ConfigSpace;
  /** Its counters (the trace holds them under `<tracePrefix>.<slot>`). */
  readonly counters: object;
}

/** A component besides the devices and the ExpEther fabric that a kind adds (a NIC's network peer): digested by the exact fast path. */
export type FabricNode = Digestible;

/** A slot schema: a strict zod object whose `kind` is the kind's literal (the union's discriminator). */
export type SlotSchema<Kind extends string = string> = z.ZodObject<{ kind: z.ZodLiteral<Kind> } & z.ZodRawShape, z.UnknownKeysParam, z.ZodTypeAny>;

/**
 * What `build` gets: the slot, the kind's parameters for it, the fabric's shared pieces, and the
 * hooks to make the slot's PCIe link and anything the device needs outside its slot.
 */
export interface BuildContext<Slot = unknown, Params = unknown> {
  /** The slot's name, `box0.slot2`: it names the device, its link (`box0.slot2.link`), its bridge and its trace keys. */
  name: string;
  /** The box's name and the slot's index in it. */
  box: string;
  slot: number;
  /** The slot as the topology gives it (`kind`, `group`, the kind's own fields). */
  spec: Slot;
  /** The kind's parameters for this slot: its `defaults` if any, the topology's block (`ssd:`) and the slot's overrides (`slots[i].ssd`) laid over each other, field by field. */
  params: Params;
  topology: KindTopology;
  scheduler: Scheduler;
  rng: RngFactory;
  trace: TraceRegistry;
  /** The builder's options (seed, scheduler, connect; `storeFor`: live mode's drives in files). */
  options: Readonly<FabricOptions<Scheduler>>;
  /**
   * Makes the slot's PCIe link (`<name>.link`, from `link` and the topology's pcie block) and the
   * slot's I/O-side bridge on its upstream end; the device goes on `link.down`. Call it exactly once,
   * before constructing the device (the trace lists link, bridge and device in that order).
   */
  mkLink(link: LinkConfig): PcieLink;
  /** Joins two Ethernet ports with the fabric's channel (the injected `connect`: captures, faults and live transports apply). */
  connect(a: EthPort, b: EthPort, latencyNs: number): void;
  /** An Ethernet switch with the topology's switch parameters (rate, latency, forwarding, buffers); it joins `fabric.switches`. */
  mkSwitch(name: string, ports: number): EthSwitch;
  /** Ethernet port parameters of the topology's network (rate, buffer bytes). */
  ethParams: EthPortParams;
  /** Adds a component outside the slots (a NIC's network peer) to `fabric.nodes`, digested by the fast path; names must differ. */
  addNode(name: string, node: FabricNode): void;
}

/** What a driver's probe gets from boot: the function, its slot, and the host's pieces. */
export interface ProbeContext<Params = unknown> {
  fn: FoundFunction;
  /** The box slot the function sits in (from the downstream port above it). */
  slot: KindSlot;
  /** The slot's parameters, as the builder gave them to its device (`BuildContext.params`). */
  params: Params;
  topology: KindTopology;
  /** The name the host gives it: its kind's `name(index)`. */
  name: string;
  /** Of the functions of its kind this host found, which (from 0, in enumeration order). */
  index: number;
  scheduler: Scheduler;
  rootComplex: RootComplex;
  allocator: HostMemoryAllocator;
  manager: DcManager;
  /** The booting host's parameters (queue entries, driver submit time). */
  host: KindHost;
  /** Largest transfer per command the host will ask for (the copy's chunk). */
  maxTransferBytes: number;
  /** The host's next free MSI vector (from 0x40, in the order drivers ask). */
  msiVector(): number;
}

/** A device as the host knows it after its driver came up: one row of `dconnect devices`. */
export interface KnownDevice {
  name: string;
  box: string;
  slot: number;
  bdf: string;
  capacityBytes: number;
  bar0: number;
  serial?: string;
  /** A NIC's station address, `00:60:b9:...`. */
  mac?: string;
  /** Bytes the device offers as a relay besides its own function (an SSD's CMB); a DC buffer's relay is its capacity. */
  relayBytes?: number;
  /**
   * Any other field a kind records (its `columns` read it): rows carry them through `dconnect devices
   * --json` and GET /devices unchanged, so a new kind's fields need no edit here or in either.
   */
  [field: string]: string | number | undefined;
}

/**
 * What a kind offers the DC command, declared by the kind and recorded by its probe in the DC manager:
 * `endpoint`, a device a move names as its source or destination (block devices, `addEndpoint`);
 * `relay`, memory a direct move's data may pass through (`addRelay`: a DC buffer, an SSD's CMB when it
 * has one). The relay planner (host/dc/relay-planner.ts) ranks every relay the host recorded.
 */
export type Capability = 'endpoint' | 'relay';

/** The host side of a kind: which PCI functions its driver takes, and bringing them up. */
export interface DeviceDriver<Params = unknown> {
  /** Whether the driver takes this function, by class code as Linux matches drivers (`pci_device_id`), vendor and device id where the class is shared. */
  match(fn: FoundFunction): boolean;
  /** Brings the function up (a sequence of configuration, MMIO and commands) and registers it with the DC manager. */
  probe(ctx: ProbeContext<Params>): Seq<void>;
  /** The devices of this kind the host registered, in enumeration order. */
  devices(manager: DcManager): KnownDevice[];
}

/**
 * One kind of device a box slot can hold: everything the schema, the builder, boot and the labels of
 * results need to know about it. `device-registry.ts` lists them.
 */
export interface DeviceKind<
  Kind extends string = string,
  Key extends string = string,
  Params extends z.ZodTypeAny = z.ZodTypeAny,
  Slot extends SlotSchema<Kind> = SlotSchema<Kind>,
  Block extends z.ZodTypeAny = Params,
> {
  /** The slot's `kind:` in a topology (`ssd`, `dc-buffer`). */
  readonly kind: Kind;
  /** The topology's block of parameters for every slot of the kind, also the slot field overriding some of them (`ssd`, `dcBuffer`); the parameters hold a `link`. */
  readonly paramsKey: Key;
  /** The schema of one device's parameters, complete (`ssd:` in paper-2012). */
  readonly params: Params;
  /**
   * The schema of the topology's block under `paramsKey`, when it is not `params` itself: for a kind
   * whose block may be left out (so topologies without the kind need not change), e.g.
   * `params.partial().optional()` with `defaults`.
   */
  readonly block?: Block;
  /** The values under the block's: a slot's parameters are these, then the topology's block, then the slot's overrides, field by field. */
  readonly defaults?: z.output<Params>;
  /** The schema of a slot: `kind` literal, `group` (schema-parts' `slotGroup`), optional overrides under `paramsKey` (the block's `.partial()`), the kind's own fields. */
  readonly slot: Slot;
  /** At most `max` slots of the kind in one box (`a box holds at most 16 SSDs`). */
  readonly perBox?: { max: number; noun: string };
  /** Constructs the device for one slot: `ctx.mkLink(...)` first, then the device on the link's downstream port. */
  build(ctx: BuildContext<z.output<Slot>, z.output<Params>>): SlotDevice;
  readonly driver: DeviceDriver<z.output<Params>>;
  /** The columns of the devices tables (`dconnect devices`, `devices --live`) that depend on the kind: its capacity and what identifies it (serial, MAC). */
  columns(d: KnownDevice): { capacity: string; id: string };
  /** What the kind offers the DC command (`Capability`); a device may offer less (an SSD without a CMB is no relay). */
  readonly capabilities: readonly Capability[];
  /** How the host names the i-th device of the kind it finds (from 0): sda, sdb, ... or dcbuf0, dcbuf1, ... */
  name(index: number): string;
  /** The prefix of the device's trace key (`ssd` in `ssd.box0.slot0`); the device registers `<tracePrefix>.<slot>`. */
  readonly tracePrefix: string;
  /** The device's trace key as a resource, for people, from the device's name: `sda`, `dcbuf0 DDR`. */
  label(device: string): string;
  /** The timed resources its trace counters hold, named from `label`, with their busy time (ps), for the bottleneck analysis. */
  resources(label: string, counters: Record<string, number>): { resource: string; busyPs: number }[];
}

/** A driver match table entry, as Linux's `pci_device_id`: a class code, and a vendor and device id when the class alone is not enough. */
export interface PciMatch {
  classCode: number;
  vendorId?: number;
  deviceId?: number;
}

/** The predicate of a match table: a function matches when every field an entry gives agrees. */
export function pciMatch(...ids: PciMatch[]): (fn: FoundFunction) => boolean {
  return (fn) => ids.some((id) => fn.classCode === id.classCode && (id.vendorId === undefined || fn.vendorId === id.vendorId) && (id.deviceId === undefined || fn.deviceId === id.deviceId));
}
