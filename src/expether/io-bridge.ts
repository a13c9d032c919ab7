import type { Scheduler } from '../core/scheduler.js';
import type { TraceRegistry } from '../core/trace.js';
import type { EthPort } from '../ethernet/port.js';
import { bridgeConfig, type ConfigSpace } from '../pcie/config-space.js';
import type { PciePort } from '../pcie/link.js';
import { bdf, bdfBus, CPL_STATUS, Tlp } from '../pcie/tlp.js';
import { ExpEtherBridge, ROUTE_UNSUPPORTED, type BridgeParams, type RouteDecision } from './bridge.js';
import { serveConfig, toType0 } from '../pcie/config-tlps.js';
import { EXPETHER_DOWNSTREAM_DEVICE_ID, NEC_VENDOR_ID } from './host-bridge.js';
import type { PortRoute } from './pdu.js';

/**
 * The I/O-side ExpEther bridge of one box slot: to the host it is a downstream port of the virtual
 * switch (its configuration space travels over Ethernet); to the device in its slot it is the
 * upstream end of the slot's PCIe link. A TLP from the device goes to the bridge that owns its
 * address (another slot: device to device, through the box's switch) or to the host-side bridge.
 */
export class IoSideBridge extends ExpEtherBridge {
  readonly config: ConfigSpace;
  private routesTable: PortRoute[] = [];
  private busNumber = 0;

  constructor(
    name: string,
    scheduler: Scheduler,
    mac: number,
    groupId: number,
    params: BridgeParams,
    eth: EthPort,
    pcie: PciePort,
    readonly hostMac: number,
    link: { generation: number; lanes: number },
    trace?: TraceRegistry,
  ) {
    super(name, scheduler, mac, groupId, params, eth, pcie, trace);
    this.config = bridgeConfig({ vendorId: NEC_VENDOR_ID, deviceId: EXPETHER_DOWNSTREAM_DEVICE_ID, portType: 'downstream', linkGen: link.generation, linkLanes: link.lanes });
    this.addPeer(hostMac);
  }

  protected completerId(): number {
    return this.busNumber === 0 ? 0 : bdf(this.busNumber, 0);
  }

  protected override onRoutes(routes: PortRoute[]): void {
    this.routesTable = routes;
    for (const r of routes) if (r.mac !== this.mac) this.addPeer(r.mac);
  }

  protected route(tlp: Tlp): RouteDecision {
    if (tlp.kind === 'MRd' || tlp.kind === 'MWr') {
      for (const r of this.routesTable) {
        if (tlp.address >= r.memBase && tlp.address <= r.memLimit) {
          return r.mac === this.mac ? ROUTE_UNSUPPORTED : this.peerRoute(r.mac, tlp);
        }
      }
      return this.peerRoute(this.hostMac, tlp);
    }
    if (tlp.kind === 'Cpl' || tlp.kind === 'CplD') {
      const bus = bdfBus(tlp.requesterId);
      for (const r of this.routesTable) {
        if (r.mac !== this.mac && r.secondaryBus !== 0 && bus >= r.secondaryBus && bus <= r.subordinateBus) return this.peerRoute(r.mac, tlp);
      }
      return this.peerRoute(this.hostMac, tlp);
    }
    return ROUTE_UNSUPPORTED; // devices do not issue configuration requests
  }

  protected handleLocal(): Tlp | null {
    return null;
  }

  protected override fromEthernet(tlp: Tlp, fromMac: number): Tlp | null {
    if (tlp.kind === 'CfgRd0' || tlp.kind === 'CfgWr0') {
      this.busNumber = bdfBus(tlp.targetId);
      this.sendToPeer(fromMac, serveConfig(this.config, tlp, this.completerId()));
      return null;
    }
    if (tlp.kind === 'CfgRd1' || tlp.kind === 'CfgWr1') {
      const bus = bdfBus(tlp.targetId);
      if (bus === this.config.secondaryBus() && ((tlp.targetId >>> 3) & 0x1f) === 0) return toType0(tlp);
      this.counters.unsupportedRequests++;
      this.sendToPeer(fromMac, Tlp.completion(tlp, this.completerId(), CPL_STATUS.UR, null, 0, 0));
      return null;
    }
    return tlp;
  }
}
