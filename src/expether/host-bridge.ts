import type { Scheduler } from '../core/scheduler.js';
import type { TraceRegistry } from '../core/trace.js';
import type { EthPort } from '../ethernet/port.js';
import { bridgeConfig, CFG, type ConfigSpace } from '../pcie/config-space.js';
import type { PciePort } from '../pcie/link.js';
import { bdf, bdfBus, type Tlp } from '../pcie/tlp.js';
import { ExpEtherBridge, ROUTE_LOCAL, ROUTE_UNSUPPORTED, type BridgeParams, type RouteDecision } from './bridge.js';
import { configWriteValue, serveConfig, toType0 } from '../pcie/config-tlps.js';
import type { PortRoute } from './pdu.js';

/** NEC's PCI vendor id; ExpEther bridges present themselves as a PCIe switch. */
export const NEC_VENDOR_ID = 0x1033;
export const EXPETHER_UPSTREAM_DEVICE_ID = 0x0e01;
export const EXPETHER_DOWNSTREAM_DEVICE_ID = 0x0e02;

/**
 * The server-side ExpEther bridge: a PCIe card in the host that appears as the upstream port of a
 * PCIe switch whose downstream ports are the I/O-side bridges of its group (virtual slot k = device k
 * on the switch's internal bus). It keeps shadow copies of the downstream ports' routing registers,
 * updated as host configuration writes pass through it, routes by them, and distributes them to the
 * group so I/O-side bridges can route device-to-device traffic without the host.
 */
export class HostSideBridge extends ExpEtherBridge {
  readonly config: ConfigSpace;
  private readonly shadows: ConfigSpace[] = [];
  private busNumber = 0;

  constructor(
    name: string,
    scheduler: Scheduler,
    mac: number,
    groupId: number,
    params: BridgeParams,
    eth: EthPort,
    pcie: PciePort,
    /** MACs of the I/O-side bridges in this group, by virtual slot. */
    readonly slotMacs: number[],
    link: { generation: number; lanes: number },
    trace?: TraceRegistry,
  ) {
    super(name, scheduler, mac, groupId, params, eth, pcie, trace);
    this.config = bridgeConfig({ vendorId: NEC_VENDOR_ID, deviceId: EXPETHER_UPSTREAM_DEVICE_ID, portType: 'upstream', linkGen: link.generation, linkLanes: link.lanes });
    for (const m of slotMacs) {
      this.addPeer(m);
      this.shadows.push(bridgeConfig({ vendorId: NEC_VENDOR_ID, deviceId: EXPETHER_DOWNSTREAM_DEVICE_ID, portType: 'downstream' }));
    }
  }

  protected completerId(): number {
    return bdf(this.busNumber, 0);
  }

  protected route(tlp: Tlp): RouteDecision {
    switch (tlp.kind) {
      case 'CfgRd0':
      case 'CfgWr0':
        this.busNumber = bdfBus(tlp.targetId);
        return ROUTE_LOCAL;
      case 'CfgRd1':
      case 'CfgWr1': {
        const bus = bdfBus(tlp.targetId);
        if (bus === this.config.secondaryBus()) {
          const slot = (tlp.targetId >>> 3) & 0x1f;
          if ((tlp.targetId & 7) !== 0 || slot >= this.slotMacs.length) return ROUTE_UNSUPPORTED;
          const t0 = toType0(tlp);
          if (t0.kind === 'CfgWr0') this.snoop(slot, t0);
          return this.peerRoute(this.slotMacs[slot], t0);
        }
        const slot = this.slotRoutingBus(bus);
        return slot < 0 ? ROUTE_UNSUPPORTED : this.peerRoute(this.slotMacs[slot], tlp);
      }
      case 'MRd':
      case 'MWr': {
        const slot = this.slotRoutingAddress(tlp.address);
        return slot < 0 ? ROUTE_UNSUPPORTED : this.peerRoute(this.slotMacs[slot], tlp);
      }
      default: {
        const slot = this.slotRoutingBus(bdfBus(tlp.requesterId));
        return slot < 0 ? ROUTE_UNSUPPORTED : this.peerRoute(this.slotMacs[slot], tlp);
      }
    }
  }

  /** The first downstream port whose bus range holds `bus`, or -1 (loops rather than findIndex: no closure per TLP). */
  private slotRoutingBus(bus: number): number {
    for (let i = 0; i < this.shadows.length; i++) if (this.shadows[i].routesBus(bus)) return i;
    return -1;
  }

  /** The first downstream port whose memory windows hold `address`, or -1. */
  private slotRoutingAddress(address: number): number {
    for (let i = 0; i < this.shadows.length; i++) if (this.shadows[i].routesAddress(address)) return i;
    return -1;
  }

  protected handleLocal(tlp: Tlp): Tlp | null {
    return serveConfig(this.config, tlp, this.completerId());
  }

  /** Mirrors a configuration write to a downstream port; routing changes go to the whole group. */
  private snoop(slot: number, t0: Tlp): void {
    const reg = t0.register & 0xfc;
    this.shadows[slot].write32(reg, configWriteValue(t0), t0.firstBe);
    if (reg === CFG.BUS_NUMBERS || reg === CFG.MEMORY_BASE_LIMIT || reg === CFG.PREF_BASE_LIMIT) this.distributeRoutes();
  }

  /** The group's routing table: every downstream port's bus range and memory window. */
  routes(): PortRoute[] {
    return this.shadows.map((s, i) => {
      const w = s.memoryWindow();
      return { mac: this.slotMacs[i], secondaryBus: s.secondaryBus(), subordinateBus: s.subordinateBus(), memBase: w ? w.base : 1, memLimit: w ? w.limit : 0 };
    });
  }

  private distributeRoutes(): void {
    const routes = this.routes();
    for (const m of this.slotMacs) this.sendRoutes(m, routes);
  }
}
