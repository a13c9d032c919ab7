import { DconnectError } from '../core/errors.js';
import { RngFactory } from '../core/rng.js';
import { VirtualScheduler, type Scheduler } from '../core/scheduler.js';
import { TraceRegistry } from '../core/trace.js';
import { EthPort, CableChannel, type EthChannel, type EthPortParams } from '../ethernet/port.js';
import { EthSwitch, type SwitchForwarding } from '../ethernet/switch.js';
import type { BridgeParams } from '../expether/bridge.js';
import { splitAtHits } from '../expether/burst-frames.js';
import { HostSideBridge } from '../expether/host-bridge.js';
import { IoSideBridge } from '../expether/io-bridge.js';
import { PcieLink, type FcCredits } from '../pcie/link.js';
import type { PcieGeneration, PcieLanes } from '../pcie/link-params.js';
import type { BlockStore } from '../devices/block-store.js';
import { RootComplex } from '../devices/root-complex.js';
import type { DeviceKind, FabricNode, KindSlot, SlotDevice } from './device-kind.js';
import type { ConnectFn, FabricOptions } from './fabric-options.js';
export type { ConnectFn, FabricOptions } from './fabric-options.js';
import { kindOf, slotParams, type DeviceKindName } from './device-registry.js';
import { groupOf, hostsOf, FIRST_HOST, type HostConfig, type Topology } from './schema.js';
import type { LinkConfig } from './schema-parts.js';

/** A box slot of a built fabric: its kind, bridge, link and device (`device-kind.ts` KindSlot, with the registry's kind names). */
export type SlotInstance = KindSlot<DeviceKindName>;

/**
 * One host: root complex -- host link -- server-side bridge on the shared switches, and the slots of
 * its ExpEther group, which its bridge shows as the downstream ports of its virtual switch.
 */
export interface HostInstance {
  /** `host` for the first; an extra host's name from the topology's `extraHosts`. */
  name: string;
  groupId: number;
  /** Its parameters (an extra host's overrides of the `host` block applied). */
  config: HostConfig;
  rootComplex: RootComplex;
  /** The server-side bridge's PCIe link (`hostLink`, or `<name>Link`). */
  link: PcieLink;
  bridge: HostSideBridge;
  /** Its group's slots by virtual slot: slot k is device k on its bridge's internal bus. */
  slots: SlotInstance[];
}

/** Everything a topology instantiates, ready to boot; `S` is the scheduler's type (injected, or a VirtualScheduler). */
export interface Fabric<S extends Scheduler = VirtualScheduler> {
  topology: Topology;
  scheduler: S;
  trace: TraceRegistry;
  rng: RngFactory;
  /** The first host's root complex, link and bridge (`hosts[0]`'s). */
  rootComplex: RootComplex;
  /** The server-side bridge's PCIe link: the paper's PCIe analyzer sits here. */
  hostLink: PcieLink;
  hostBridge: HostSideBridge;
  /** Every host, the first first; each sees only its group's slots. */
  hosts: HostInstance[];
  switches: EthSwitch[];
  /** Every slot of every box, in topology order, whatever its group. */
  slots: SlotInstance[];
  /** Components the slots' kinds added outside the slots (`BuildContext.addNode`: a NIC's network peer), by name; digested by the fast path. */
  nodes: Map<string, FabricNode>;
}

/** The host of that name (default the first); an unknown name is an error listing the hosts. */
export function hostOf<S extends Scheduler>(fabric: Fabric<S>, name?: string): HostInstance {
  if (name === undefined) return fabric.hosts[0];
  const h = fabric.hosts.find((x) => x.name === name);
  if (!h) {
    throw new DconnectError('BAD_OPTION', `topology ${fabric.topology.name} has no host '${name}'`, `hosts: ${fabric.hosts.map((x) => `${x.name} (group ${x.groupId})`).join(', ')}`);
  }
  return h;
}

const INFINITE_CPL: Pick<FcCredits, 'completionHeaders' | 'completionDataBytes'> = { completionHeaders: Infinity, completionDataBytes: Infinity };
const HOST_BRIDGE_MAC = 0x0060_b900_0001; // NEC's OUI 00:60:B9, locally numbered; host i's is this + i
const IO_BRIDGE_MAC_BASE = 0x0060_b900_0100;

/** The default `connect`: an in-process cable that hands the frame object itself to the far end. */
export const connectCable: ConnectFn = (a, b, latencyNs) => new CableChannel(a, b, latencyNs);


/** The default channel factory while `withConnect` runs (or as `setDefaultConnect` set it); null: `connectCable`. */
let scopedConnect: ConnectFn | null = null;

/**
 * Makes `connect` the channel of every fabric built from now on that names none (null: back to
 * `connectCable`): for running a whole test suite over another channel (`npm test` runs the
 * integration suite a second time over the bytes-mode channel, test/helpers/bytes-mode.ts).
 */
export function setDefaultConnect(connect: ConnectFn | null): void {
  scopedConnect = connect;
}

/**
 * Runs `fn` (synchronously) with `connect` as the default channel factory of every fabric built
 * inside it that names none: for harnesses that build their own fabric (runtime/moves.ts), so a test
 * can run a whole move over another channel (e.g. expether/bytes-channel.ts). Restored afterwards.
 */
export function withConnect<T>(connect: ConnectFn, fn: () => T): T {
  const saved = scopedConnect;
  scopedConnect = connect;
  try {
    return fn();
  } finally {
    scopedConnect = saved;
  }
}

/**
 * Instantiates a topology (ns-3's "helper" role): links, ports, switches, bridges and devices, wired
 * together. Model classes never build topology; this is the only place that does. The scheduler and
 * the channel factory may be injected (`options`); a number is the seed, with the defaults.
 */
export function buildFabric(topology: Topology, options: number | FabricOptions<VirtualScheduler>): Fabric;
export function buildFabric<S extends Scheduler>(topology: Topology, options: FabricOptions<S> & { scheduler: S }): Fabric<S>;
export function buildFabric(topology: Topology, options: number | FabricOptions<Scheduler>): Fabric<Scheduler> {
  const t = topology;
  const opts: FabricOptions<Scheduler> = typeof options === 'number' ? { seed: options } : options;
  const scheduler: Scheduler = opts.scheduler ?? new VirtualScheduler();
  const connectFn = opts.connect ?? scopedConnect ?? connectCable;
  const connect = (a: EthPort, b: EthPort, latencyNs: number): void => {
    const name = `${a.name}<->${b.name}`;
    const ch = connectFn(a, b, latencyNs, name);
    if (!ch || a.channel !== ch || b.channel !== ch) throw new Error(`buildFabric: connect(${name}) returned a channel that is not both ports' channel`);
  };
  const trace = new TraceRegistry();
  const rng = new RngFactory(opts.seed);
  const portCredits: FcCredits = t.pcie.portCredits;
  const endpointCredits: FcCredits = { ...portCredits, ...INFINITE_CPL };
  const mkLink = (name: string, cfg: LinkConfig, upCredits: FcCredits, downCredits: FcCredits) => {
    const link = new PcieLink(name, scheduler, { generation: cfg.generation as PcieGeneration, lanes: cfg.lanes as PcieLanes, latencyNs: cfg.latencyNs, mpsBytes: t.pcie.mpsBytes, txQueueTlps: t.pcie.txQueueTlps }, upCredits, downCredits, trace);
    link.up.burstBytes = link.down.burstBytes = opts.burstBytes ?? 0;
    return link;
  };
  const bridgeParams: BridgeParams = {
    bridgeLatencyNs: t.expether.bridgeLatencyNs,
    windowFrames: t.expether.windowFrames,
    retransmitTimeoutNs: t.expether.retransmitTimeoutNs,
    ackEveryFrames: t.expether.ackEveryFrames,
    ackDelayNs: t.expether.ackDelayNs,
  };
  const ethParams: EthPortParams = { rateBitsPerSec: t.ethernet.rateGbps * 1e9, queueLimitBytes: t.ethernet.switchBufferBytes, maxPayloadBytes: t.ethernet.maxPayloadBytes };

  // Hosts: root complex -- host link -- server-side bridge, each in its own group. The first's
  // components keep their names (hostLink, host.rootComplex, bridge.host, port hostBridge); host
  // `x`'s are xLink, x.rootComplex, bridge.x, port xBridge.
  const hostSpecs = hostsOf(t);
  const mkHostSide = (i: number) => {
    const spec = hostSpecs[i];
    const c = spec.config;
    const first = spec.name === FIRST_HOST;
    const link = mkLink(first ? 'hostLink' : `${spec.name}Link`, c.link, endpointCredits, portCredits);
    const rc = new RootComplex(scheduler, { memoryBytes: c.memoryBytes, memoryReadLatencyNs: c.memoryReadLatencyNs, readCompletionBytes: c.readCompletionBytes, interruptLatencyNs: c.interruptLatencyNs }, link.up, c.link, trace, spec.name);
    return { spec, link, rc };
  };
  const firstHost = mkHostSide(0);
  const hostLink = firstHost.link;
  const rootComplex = firstHost.rc;

  // Ethernet: a chain of switchHops switches between the host and every box slot. One box: the
  // chain's last switch holds every slot (the paper's testbed). Several boxes: the first
  // switchHops - 1 switches are shared, and each box has its own last switch (`sw<h-1>.<box>`),
  // joined to the end of the shared chain; a move within a box then stays on its box's switch.
  const slotCount = t.boxes.reduce((n, b) => n + b.slots.length, 0);
  const h = t.ethernet.switchHops;
  const multi = t.boxes.length > 1;
  if (multi && h < 2) {
    throw new DconnectError('BAD_TOPOLOGY', `${t.boxes.length} boxes need ethernet.switchHops >= 2 (a shared switch on the host's side joining each box's own switch), not ${h}`, 'set ethernet.switchHops: 2 or more');
  }
  const mkSwitch = (name: string, ports: number) => {
    const sw = new EthSwitch(name, scheduler, { ...ethParams, latencyNs: t.ethernet.switchLatencyNs, forwarding: t.ethernet.switchForwarding as SwitchForwarding, ports, macTableEntries: 1024 }, trace);
    for (const p of sw.ports) {
      p.splitBurst = splitAtHits; // a burst overflowing an output buffer goes on around the frames dropped
      p.gapFill = (opts.burstBytes ?? 0) > 0; // frames are served in the order they entered (EthPort.gapFill)
    }
    return sw;
  };
  const shared = multi ? h - 1 : h;
  const switches: EthSwitch[] = [];
  // Hosts after the first plug into sw0 too, on ports after the ones a single host's fabric has.
  const extraHosts = hostSpecs.length - 1;
  let sw0Ports = 0;
  for (let i = 0; i < shared; i++) {
    const ports = !multi && i === h - 1 ? slotCount + 2 : multi && i === shared - 1 ? 1 + t.boxes.length : 2;
    if (i === 0) sw0Ports = ports;
    switches.push(mkSwitch(`sw${i}`, i === 0 ? ports + extraHosts : ports));
  }
  for (let i = 0; i + 1 < shared; i++) connect(switches[i].ports[1], switches[i + 1].ports[0], t.ethernet.cableLatencyNs);
  /** Where box b's slot j plugs in. */
  let slotPort: (b: number, j: number, k: number) => EthPort;
  if (multi) {
    const boxSwitches = t.boxes.map((box, b) => {
      const sw = mkSwitch(`sw${h - 1}.${box.name}`, box.slots.length + 1);
      connect(switches[shared - 1].ports[1 + b], sw.ports[0], t.ethernet.cableLatencyNs);
      return sw;
    });
    switches.push(...boxSwitches);
    slotPort = (b, j) => boxSwitches[b].ports[1 + j];
  } else {
    const last = switches[shared - 1];
    slotPort = (_b, _j, k) => last.ports[(h === 1 ? 0 : 1) + k];
  }
  const slotMacs = Array.from({ length: slotCount }, (_, i) => IO_BRIDGE_MAC_BASE + i);
  const slotGroups = t.boxes.flatMap((box) => box.slots.map((s) => groupOf(t, s)));
  const hostMacOf = new Map(hostSpecs.map((x, i) => [x.groupId, HOST_BRIDGE_MAC + i]));
  const mkHostBridge = (i: number, side: ReturnType<typeof mkHostSide>, port: EthPort) => {
    const { spec, link } = side;
    const first = spec.name === FIRST_HOST;
    const eth = new EthPort(first ? 'hostBridge' : `${spec.name}Bridge`, scheduler, ethParams, null, trace);
    eth.splitBurst = splitAtHits;
    connect(eth, port, t.ethernet.cableLatencyNs);
    // Its virtual switch's downstream ports: its group's slots only, so it enumerates nothing else.
    const macs = slotMacs.filter((_, k) => slotGroups[k] === spec.groupId);
    return new HostSideBridge(spec.name, scheduler, HOST_BRIDGE_MAC + i, spec.groupId, bridgeParams, eth, link.down, macs, spec.config.link, trace);
  };
  const hostBridge = mkHostBridge(0, firstHost, switches[0].ports[!multi && h === 1 ? slotCount + 1 : 0]);
  const hostSides = [{ ...firstHost, bridge: hostBridge }];
  for (let i = 1; i < hostSpecs.length; i++) {
    const side = mkHostSide(i);
    hostSides.push({ ...side, bridge: mkHostBridge(i, side, switches[0].ports[sw0Ports + i - 1]) });
  }

  const slots: SlotInstance[] = [];
  const nodes = new Map<string, FabricNode>();
  let n = 0;
  t.boxes.forEach((box, b) => {
    box.slots.forEach((s, slot) => {
      const k = n++;
      const name = `${box.name}.slot${slot}`;
      const group = slotGroups[k];
      const hostMac = hostMacOf.get(group);
      if (hostMac === undefined) throw new DconnectError('BAD_TOPOLOGY', `${name} is in ExpEther group ${group}, which has no host`, `hosts' groups: ${hostSpecs.map((x) => `${x.groupId} (${x.name})`).join(', ')}`);
      const eth = new EthPort(name, scheduler, ethParams, null, trace);
      eth.splitBurst = splitAtHits;
      connect(eth, slotPort(b, slot, k), t.ethernet.cableLatencyNs);
      const kind = kindOf(s.kind);
      let made: { link: PcieLink; bridge: IoSideBridge } | null = null;
      const ctx: Parameters<DeviceKind['build']>[0] = {
        name,
        box: box.name,
        slot,
        spec: s,
        params: slotParams(t, box.name, slot),
        topology: t,
        scheduler,
        rng,
        trace,
        options: opts,
        mkLink: (cfg) => {
          if (made) throw new Error(`buildFabric: ${kind.kind} in ${name} made its PCIe link twice`);
          const link = mkLink(`${name}.link`, cfg, portCredits, endpointCredits);
          made = { link, bridge: new IoSideBridge(name, scheduler, slotMacs[k], group, bridgeParams, eth, link.up, hostMac, cfg, trace) };
          return link;
        },
        connect,
        mkSwitch: (swName, ports) => {
          const sw = mkSwitch(swName, ports);
          switches.push(sw);
          return sw;
        },
        ethParams,
        addNode: (nodeName, node) => {
          if (nodes.has(nodeName)) throw new DconnectError('BAD_TOPOLOGY', `two components are named '${nodeName}' (the second from ${name})`);
          nodes.set(nodeName, node);
        },
      };
      const device = kind.build(ctx);
      const plugged = made as { link: PcieLink; bridge: IoSideBridge } | null;
      if (!plugged) throw new Error(`buildFabric: ${kind.kind} in ${name} made no PCIe link (its build must call ctx.mkLink)`);
      slots.push({ box: box.name, slot, group, kind: s.kind, bridge: plugged.bridge, link: plugged.link, device });
    });
  });
  const hosts: HostInstance[] = hostSides.map(({ spec, link, rc, bridge }) => ({
    name: spec.name,
    groupId: spec.groupId,
    config: spec.config,
    rootComplex: rc,
    link,
    bridge,
    slots: slots.filter((s) => s.group === spec.groupId),
  }));
  return { topology: t, scheduler, trace, rng, rootComplex, hostLink, hostBridge, hosts, switches, slots, nodes };
}
