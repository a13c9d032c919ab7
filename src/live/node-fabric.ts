/**
 * One live node's part of the fabric. Every node builds the whole topology with the one builder (so
 * both sides agree on every address, MAC and cable number) and runs only its own part: its cables
 * are in-process ones, a cable to another node is a UDP channel (udp-transport.ts), and a cable
 * between two other nodes' components is a ForeignCable, which throws if anything ever sends on it.
 * So the parts a node does not run are inert objects, and a model bug that made them run would stop
 * the node with a clear error instead of simulating a device twice.
 */
import type { EthChannel, EthPort } from '../ethernet/port.js';
import type { Frame } from '../ethernet/frame.js';
import type { BlockStore } from '../devices/block-store.js';
import { linkName } from '../runtime/capture.js';
import { buildFabric, connectCable, type ConnectFn, type Fabric } from '../topology/builder.js';
import type { Topology } from '../topology/schema.js';
import { ownerOfPort } from './placement.js';
import type { RealtimeScheduler } from './realtime-scheduler.js';
import type { UdpTransport } from './udp-transport.js';

class ForeignCable implements EthChannel {
  constructor(
    a: EthPort,
    b: EthPort,
    private readonly node: string,
    private readonly owners: string,
  ) {
    a.channel = this;
    b.channel = this;
  }

  carry(from: EthPort, _frame: Frame): void {
    throw new Error(`live node ${this.node}: port ${from.name} sent a frame, but it belongs to ${this.owners}: that part of the model runs in another process`);
  }
}

export interface CrossingCable {
  id: number;
  name: string;
  local: string;
  remote: string;
}

export interface NodeFabric {
  fabric: Fabric<RealtimeScheduler>;
  /** The cables this node shares with other nodes (UDP channels). */
  crossing: CrossingCable[];
}

export function buildNodeFabric(
  t: Topology,
  o: { node: string; seed: number; scheduler: RealtimeScheduler; transport: UdpTransport; storeFor?: (slot: string, capacityBytes: number) => BlockStore; local?: ConnectFn; /** Burst granularity's largest burst (0: per TLP); every node of a fabric runs the same. */ burstBytes?: number },
): NodeFabric {
  const crossing: CrossingCable[] = [];
  let cable = 0;
  const fabric = buildFabric(t, {
    seed: o.seed,
    scheduler: o.scheduler,
    storeFor: o.storeFor,
    burstBytes: o.burstBytes ?? 0,
    connect: (a, b, ns, name) => {
      const id = cable++;
      const oa = ownerOfPort(t, a.name);
      const ob = ownerOfPort(t, b.name);
      if (oa === o.node && ob === o.node) return (o.local ?? connectCable)(a, b, ns, name);
      if (oa !== o.node && ob !== o.node) return new ForeignCable(a, b, o.node, oa === ob ? `node ${oa}` : `nodes ${oa} and ${ob}`);
      const [local, remote] = oa === o.node ? [a, ob] : [b, oa];
      const link = linkName(a.name, b.name);
      crossing.push({ id, name: link, local: local.name, remote });
      const ch = o.transport.attach({ id, name: link }, local, remote, ns, o.scheduler);
      // The far port is another process's: it shares the channel object only so the builder's check holds.
      (local === a ? b : a).channel = ch;
      return ch;
    },
  });
  return { fabric, crossing };
}
