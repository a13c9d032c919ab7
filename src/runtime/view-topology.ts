/**
 * The fabric as a picture's data (issue "See a move happen"): the nodes a person would draw (the host
 * with its root complex and server-side bridge, the switches, each box with its slots' bridges and
 * devices) and the links between them (the host's PCIe link, every Ethernet cable, each slot's PCIe
 * link), each link with the trace sources that count its two directions. The web view lays it out
 * and colours it (live/web/view-app.ts); a trace-event file carries it so a recorded run can be
 * replayed on the same picture. Pure: from the topology and the devices' names.
 */
import { cableEnds } from './capture.js';
import type { Topology } from '../topology/schema.js';

export interface ViewNode {
  id: string;
  label: string;
  kind: 'host' | 'root-complex' | 'bridge' | 'switch' | 'box' | 'device';
  /** The compound node it is drawn inside (a box, the host). */
  parent?: string;
}

export interface ViewDirection {
  /** Trace source counting this direction (`eth.sw1.p2`, `hostLink.upstream`). */
  source: string;
  from: string;
  to: string;
}

export interface ViewLink {
  id: string;
  label: string;
  kind: 'ethernet' | 'pcie';
  a: string;
  b: string;
  directions: ViewDirection[];
}

export interface ViewTopology {
  name: string;
  nodes: ViewNode[];
  links: ViewLink[];
}

/** The drawn node an Ethernet port belongs to: `sw1.p3` -> `sw1`; a slot's or host's bridge port is the bridge. */
function nodeOfPort(port: string): string {
  const sw = /^(.+)\.p\d+$/.exec(port);
  return sw ? sw[1] : port;
}

/** `devices`: slot -> device name (`box0.slot2` -> `dcbuf0`), as MovesResult.devices. */
export function viewTopology(t: Topology, devices: Record<string, string>): ViewTopology {
  const nodes: ViewNode[] = [
    { id: 'host', label: 'host', kind: 'host' },
    { id: 'host.rc', label: 'root complex + DRAM', kind: 'root-complex', parent: 'host' },
    { id: 'hostBridge', label: 'server-side bridge', kind: 'bridge', parent: 'host' },
  ];
  const links: ViewLink[] = [
    { id: 'hostLink', label: 'host link (PCIe)', kind: 'pcie', a: 'host.rc', b: 'hostBridge', directions: [{ source: 'hostLink.upstream', from: 'hostBridge', to: 'host.rc' }, { source: 'hostLink.downstream', from: 'host.rc', to: 'hostBridge' }] },
  ];
  const switches = new Set<string>();
  const cables = cableEnds(t);
  for (const c of cables) {
    for (const p of [c.a, c.b]) {
      const n = nodeOfPort(p);
      if (n !== p && !switches.has(n)) {
        switches.add(n);
        nodes.push({ id: n, label: n, kind: 'switch' });
      }
    }
  }
  for (const b of t.boxes) {
    nodes.push({ id: b.name, label: b.name, kind: 'box' });
    b.slots.forEach((s, i) => {
      const slot = `${b.name}.slot${i}`;
      const name = devices[slot];
      nodes.push({ id: slot, label: `slot${i} bridge`, kind: 'bridge', parent: b.name });
      nodes.push({ id: `${slot}.dev`, label: name ? `${name} (${s.kind})` : s.kind, kind: 'device', parent: b.name });
      links.push({ id: `${slot}.link`, label: `${name ?? slot}'s link (PCIe)`, kind: 'pcie', a: slot, b: `${slot}.dev`, directions: [{ source: `${slot}.link.upstream`, from: `${slot}.dev`, to: slot }, { source: `${slot}.link.downstream`, from: slot, to: `${slot}.dev` }] });
    });
  }
  const known = new Set(nodes.map((n) => n.id));
  for (const c of cables) {
    const a = nodeOfPort(c.a);
    const b = nodeOfPort(c.b);
    // Cables of a NIC's outside network join nodes this picture does not draw: left out.
    if (!known.has(a) || !known.has(b)) continue;
    links.push({ id: `cable:${c.cable}`, label: `cable ${c.cable}`, kind: 'ethernet', a, b, directions: [{ source: `eth.${c.a}`, from: a, to: b }, { source: `eth.${c.b}`, from: b, to: a }] });
  }
  return { name: t.name, nodes, links };
}
