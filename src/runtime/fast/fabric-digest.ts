import { StateDigest, type Digestible } from '../../core/digest.js';
import type { Callback } from '../../core/scheduler.js';
import { CableChannel, type EthPort } from '../../ethernet/port.js';
import type { ExpEtherBridge } from '../../expether/bridge.js';
import { digestFrame } from '../../expether/pdu.js';
import type { Fabric } from '../../topology/builder.js';

/**
 * The whole fabric's state relative to now, as canonical text (see core/digest.ts): every link,
 * port, cable, bridge and device, the nodes the slots' kinds added (`fabric.nodes`), the host software taking part (`extra`: drivers, the operator),
 * and last the scheduler's pending events, named by the callbacks the components registered.
 */
export function digestFabric(fabric: Fabric, extra: Digestible[]): string {
  const d = new StateDigest(fabric.scheduler.now());
  // Every host's components (one host: the first's, in the order they always had).
  const hosts = fabric.hosts;
  const bridges: ExpEtherBridge[] = [...hosts.map((h) => h.bridge), ...fabric.slots.map((s) => s.bridge)];
  const byMac = new Map<number, ExpEtherBridge>(bridges.map((b) => [b.mac, b]));
  const base = (from: number, to: number) => byMac.get(from)?.sequenceBase(to) ?? 0;

  for (const h of hosts) h.link.digest(d);
  for (const s of fabric.slots) s.link.digest(d);
  const ports: EthPort[] = [...hosts.map((h) => h.bridge.eth), ...fabric.slots.map((s) => s.bridge.eth), ...fabric.switches.flatMap((sw) => sw.ports)];
  const cables = new Set<CableChannel>();
  for (const p of ports) {
    p.digest(d);
    if (p.channel instanceof CableChannel) cables.add(p.channel);
  }
  for (const c of cables) c.digest(d, (f) => digestFrame(d, f, base));
  for (const b of bridges) b.digest(d, base);
  for (const h of hosts) h.rootComplex.digest(d);
  for (const s of fabric.slots) s.device.digest(d);
  for (const node of fabric.nodes.values()) node.digest(d);
  for (const x of extra) x.digest(d);
  // A retransmission timer's due time is left out while no frame is near its timeout (ReliableSender.digest).
  const rto = (fn: Callback) => bridges.some((b) => b.isRetransmitTimer(fn));
  fabric.scheduler.digestPending(d, rto);
  return d.text();
}
