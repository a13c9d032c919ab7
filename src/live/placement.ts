/**
 * Which live node (OS process) runs which part of a topology. The host node runs the host: root
 * complex, host link and the server-side bridge. Each box node runs its box: the slots' bridges and
 * devices and the box's own switch. The switches between them: with one box, every switch runs in the
 * box node (the host's cable is the one that crosses, as in the paper's testbed, where the host reaches
 * the box over the network); with several, the shared switches on the host's side run in the host node
 * and each box's own switch in its box node. A cable whose two ends run in different nodes crosses
 * processes (a UDP channel); the rest are in-process cables.
 */
import { DconnectError } from '../core/errors.js';
import { linkName } from '../runtime/capture.js';
import { buildFabric, connectCable } from '../topology/builder.js';
import type { Topology } from '../topology/schema.js';

export type NodeRole = 'host' | 'box';
export interface LiveNode {
  name: string;
  role: NodeRole;
}

export const HOST_NODE = 'host';

/** The host node, then one node per box (named as the box). Live mode runs one host. */
export function nodesOf(t: Topology): LiveNode[] {
  const extra = (t as { extraHosts?: { name: string }[] }).extraHosts ?? [];
  if (extra.length > 0) throw new DconnectError('BAD_TOPOLOGY', `topology ${t.name} has ${extra.length + 1} hosts (${extra.map((h) => h.name).join(', ')} besides host); live mode runs one host node`, 'run it in simulation (dconnect copy --host NAME ...), or remove extraHosts for live mode');
  return [{ name: HOST_NODE, role: 'host' }, ...t.boxes.map((b) => ({ name: b.name, role: 'box' as const }))];
}

/** The node that runs the component owning an Ethernet port, by the port's name (as the builder names ports). */
export function ownerOfPort(t: Topology, port: string): string {
  if (port === 'hostBridge') return HOST_NODE;
  const slot = /^([A-Za-z][\w-]*)\.slot\d+$/.exec(port);
  if (slot) return slot[1];
  const sw = /^sw\d+(?:\.([A-Za-z][\w-]*))?\.p\d+$/.exec(port);
  if (sw) {
    if (sw[1] !== undefined) return sw[1];
    return t.boxes.length === 1 ? t.boxes[0].name : HOST_NODE;
  }
  // A NIC's network runs in its box's node: the NIC's port, its switch's ports and its clients' ports.
  const nic = /^([A-Za-z][\w-]*)\.slot\d+\.mac$/.exec(port) ?? /^net\.([A-Za-z][\w-]*)\.slot\d+\.p\d+$/.exec(port);
  if (nic) return nic[1];
  const client = t.boxes.find((b) => b.slots.some((s) => s.kind === 'nic' && s.clients.some((c) => c.name === port)));
  if (client) return client.name;
  throw new Error(`placement: no node owns Ethernet port '${port}'`);
}

/** Refuses a node name the topology does not have. */
export function checkNode(t: Topology, name: string): LiveNode {
  const n = nodesOf(t).find((x) => x.name === name);
  if (!n) throw new DconnectError('BAD_OPTION', `--name ${name}: topology ${t.name} has no node of that name`, `nodes: ${nodesOf(t).map((x) => x.name).join(', ')}`);
  return n;
}

/** Every link (as `dconnect links` names them) with the nodes that run its two ends, in the builder's order. */
export function linkPlacement(t: Topology): { link: string; nodes: [string, string] }[] {
  const out: { link: string; nodes: [string, string] }[] = [];
  buildFabric(t, {
    seed: 1,
    connect: (a, b, ns, name) => {
      out.push({ link: linkName(a.name, b.name), nodes: [ownerOfPort(t, a.name), ownerOfPort(t, b.name)] });
      return connectCable(a, b, ns, name);
    },
  });
  return out;
}

/** The links whose two ends run in different nodes: UDP channels live. */
export function crossingLinks(t: Topology): string[] {
  return linkPlacement(t)
    .filter((p) => p.nodes[0] !== p.nodes[1])
    .map((p) => p.link);
}

/** Each link's node when both its ends run in one node (a box's own cables); crossing links are absent. */
export function linkOwners(t: Topology): Map<string, string> {
  return new Map(linkPlacement(t).flatMap((p) => (p.nodes[0] === p.nodes[1] ? [[p.link, p.nodes[0]] as [string, string]] : [])));
}
