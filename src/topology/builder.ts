import { RngFactory } from '../core/rng.js';
import { VirtualScheduler } from '../core/scheduler.js';
import { TraceRegistry } from '../core/trace.js';
import { EthPort, CableChannel, type EthPortParams } from '../ethernet/port.js';
import { EthSwitch, type SwitchForwarding } from '../ethernet/switch.js';
import type { BridgeParams } from '../expether/bridge.js';
import { HostSideBridge } from '../expether/host-bridge.js';
import { IoSideBridge } from '../expether/io-bridge.js';
import { PcieLink, type FcCredits } from '../pcie/link.js';
import type { PcieGeneration, PcieLanes } from '../pcie/link-params.js';
import { DcBuffer } from '../devices/dc-buffer.js';
import { NvmeSsd } from '../devices/nvme-ssd.js';
import { RootComplex } from '../devices/root-complex.js';
import type { LinkConfig, Topology } from './schema.js';

export interface SlotInstance {
  box: string;
  slot: number;
  bridge: IoSideBridge;
  link: PcieLink;
  device: NvmeSsd | DcBuffer;
}

/** Everything a topology instantiates, ready to boot. */
export interface Fabric {
  topology: Topology;
  scheduler: VirtualScheduler;
  trace: TraceRegistry;
  rng: RngFactory;
  rootComplex: RootComplex;
  /** The server-side bridge's PCIe link: the paper's PCIe analyzer sits here. */
  hostLink: PcieLink;
  hostBridge: HostSideBridge;
  switches: EthSwitch[];
  slots: SlotInstance[];
}

const INFINITE_CPL: Pick<FcCredits, 'completionHeaders' | 'completionDataBytes'> = { completionHeaders: Infinity, completionDataBytes: Infinity };
const HOST_BRIDGE_MAC = 0x0060_b900_0001; // NEC's OUI 00:60:B9, locally numbered
const IO_BRIDGE_MAC_BASE = 0x0060_b900_0100;

/**
 * Instantiates a topology (ns-3's "helper" role): links, ports, switches, bridges and devices, wired
 * together. Model classes never build topology; this is the only place that does.
 */
export function buildFabric(topology: Topology, seed: number): Fabric {
  const t = topology;
  const scheduler = new VirtualScheduler();
  const trace = new TraceRegistry();
  const rng = new RngFactory(seed);
  const portCredits: FcCredits = t.pcie.portCredits;
  const endpointCredits: FcCredits = { ...portCredits, ...INFINITE_CPL };
  const mkLink = (name: string, cfg: LinkConfig, upCredits: FcCredits, downCredits: FcCredits) =>
    new PcieLink(name, scheduler, { generation: cfg.generation as PcieGeneration, lanes: cfg.lanes as PcieLanes, latencyNs: cfg.latencyNs, mpsBytes: t.pcie.mpsBytes, txQueueTlps: t.pcie.txQueueTlps }, upCredits, downCredits, trace);
  const bridgeParams: BridgeParams = {
    bridgeLatencyNs: t.expether.bridgeLatencyNs,
    windowFrames: t.expether.windowFrames,
    retransmitTimeoutNs: t.expether.retransmitTimeoutNs,
    ackEveryFrames: t.expether.ackEveryFrames,
    ackDelayNs: t.expether.ackDelayNs,
  };
  const ethParams: EthPortParams = { rateBitsPerSec: t.ethernet.rateGbps * 1e9, queueLimitBytes: t.ethernet.switchBufferBytes };

  // Host: root complex -- host link -- server-side bridge.
  const hostLink = mkLink('hostLink', t.host.link, endpointCredits, portCredits);
  const rootComplex = new RootComplex(scheduler, { memoryBytes: t.host.memoryBytes, memoryReadLatencyNs: t.host.memoryReadLatencyNs, readCompletionBytes: t.host.readCompletionBytes, interruptLatencyNs: t.host.interruptLatencyNs }, hostLink.up, t.host.link, trace);

  // Ethernet: a chain of switches; the host on the first, every box slot on the last.
  const slotCount = t.boxes.reduce((n, b) => n + b.slots.length, 0);
  const switches: EthSwitch[] = [];
  for (let i = 0; i < t.ethernet.switchHops; i++) {
    const ports = i === t.ethernet.switchHops - 1 ? slotCount + 2 : 2;
    switches.push(new EthSwitch(`sw${i}`, scheduler, { ...ethParams, latencyNs: t.ethernet.switchLatencyNs, forwarding: t.ethernet.switchForwarding as SwitchForwarding, ports, macTableEntries: 1024 }, trace));
  }
  for (let i = 0; i + 1 < switches.length; i++) new CableChannel(switches[i].ports[1], switches[i + 1].ports[0], t.ethernet.cableLatencyNs);
  const last = switches[switches.length - 1];
  const slotMacs = Array.from({ length: slotCount }, (_, i) => IO_BRIDGE_MAC_BASE + i);
  const hostEth = new EthPort('hostBridge', scheduler, ethParams, null, trace);
  new CableChannel(hostEth, switches[0].ports[switches.length === 1 ? slotCount + 1 : 0], t.ethernet.cableLatencyNs);
  const hostBridge = new HostSideBridge('host', scheduler, HOST_BRIDGE_MAC, t.expether.groupId, bridgeParams, hostEth, hostLink.down, slotMacs, t.host.link, trace);

  const slots: SlotInstance[] = [];
  let n = 0;
  for (const box of t.boxes) {
    box.slots.forEach((s, slot) => {
      const k = n++;
      const name = `${box.name}.slot${slot}`;
      const eth = new EthPort(name, scheduler, ethParams, null, trace);
      new CableChannel(eth, last.ports[(switches.length === 1 ? 0 : 1) + k], t.ethernet.cableLatencyNs);
      if (s.kind === 'ssd') {
        const p = { ...t.ssd, ...s.ssd };
        const link = mkLink(`${name}.link`, p.link, portCredits, endpointCredits);
        const bridge = new IoSideBridge(name, scheduler, slotMacs[k], t.expether.groupId, bridgeParams, eth, link.up, HOST_BRIDGE_MAC, p.link, trace);
        const device = new NvmeSsd(name, scheduler, { ...p, mpsBytes: t.pcie.mpsBytes, mrrsBytes: t.pcie.mrrsBytes, serial: s.serial, model: 'OCZ Z-Drive M84 (model)' }, link.down, rng.stream(`${name}.ssd`), p.link, trace);
        slots.push({ box: box.name, slot, bridge, link, device });
      } else {
        const p = { ...t.dcBuffer, ...s.dcBuffer };
        const link = mkLink(`${name}.link`, p.link, portCredits, endpointCredits);
        const bridge = new IoSideBridge(name, scheduler, slotMacs[k], t.expether.groupId, bridgeParams, eth, link.up, HOST_BRIDGE_MAC, p.link, trace);
        const device = new DcBuffer(name, scheduler, { ...p, mpsBytes: t.pcie.mpsBytes }, link.down, p.link, trace);
        slots.push({ box: box.name, slot, bridge, link, device });
      }
    });
  }
  return { topology: t, scheduler, trace, rng, rootComplex, hostLink, hostBridge, switches, slots };
}
