/**
 * The whole live fabric's counters in one answer (GET /counters' `fabric`, the web view). Each node
 * runs only its part of the model (placement.ts) and keeps zeros for the rest, so a source's counters
 * come from the node that owns its component: the host's own, each box's from its control socket
 * (GET /counters there), when the box runs on this machine. A box that does not answer within
 * BOX_TIMEOUT_MS is reported `unreachable` and its sources keep the host's zeros.
 */
import type { z } from 'zod';
import type { Topology } from '../topology/schema.js';
import type { fabricCountersSchema, nodeCountersSchema } from './control-api.js';
import { boxClient } from './control-client.js';
import { HOST_NODE, ownerOfPort } from './placement.js';

/** How long one box's counters may take (the view asks a few times a second). */
export const BOX_TIMEOUT_MS = 1_000;

/** The node that runs a trace source's component, by the source's name. */
export function ownerOfSource(t: Topology, name: string): string {
  if (name.startsWith('eth.')) return ownerOfPort(t, name.slice(4));
  if (name.startsWith('switch.')) return ownerOfPort(t, `${name.slice(7)}.p0`);
  const box = /(?:^|\.)([A-Za-z][\w-]*)\.slot\d+(?:\.|$)/.exec(name);
  if (box && t.boxes.some((b) => b.name === box[1])) return box[1];
  return HOST_NODE;
}

/** A node's own counters (control-api.ts nodeCountersSchema: a box's GET /counters answer). */
export type NodeCounters = z.infer<typeof nodeCountersSchema>;

/** The whole fabric's counters (control-api.ts fabricCountersSchema): `nodes` says where each node's came from, `nodeSeconds` each node's own simulated time (a node's busy times are in its own clock; `simulatedSeconds` is the host's). */
export type FabricCounters = z.infer<typeof fabricCountersSchema>;

/** Merges the host's counters with each box's, every source from its owner. */
export async function fabricCounters(t: Topology, own: NodeCounters, boxSocket: (box: string) => string): Promise<FabricCounters> {
  const out: FabricCounters = { trace: {}, gauges: {}, simulatedSeconds: own.simulatedSeconds, nodes: { [HOST_NODE]: 'here' }, nodeSeconds: { [HOST_NODE]: own.simulatedSeconds } };
  const answers = await Promise.all(
    t.boxes.map((b) =>
      boxClient(boxSocket(b.name)).counters({ timeoutMs: BOX_TIMEOUT_MS }).then(
        (c) => [b.name, c] as const,
        () => [b.name, null] as const,
      ),
    ),
  );
  const byNode = new Map<string, NodeCounters>([[HOST_NODE, own]]);
  for (const [box, c] of answers) {
    out.nodes[box] = c ? 'asked' : 'unreachable';
    if (c) {
      byNode.set(box, c);
      out.nodeSeconds[box] = c.simulatedSeconds;
    }
  }
  for (const [kind, key] of [['trace', 'trace'], ['gauges', 'gauges']] as const) {
    for (const name of Object.keys(own[kind])) {
      const from = byNode.get(ownerOfSource(t, name)) ?? own;
      out[key][name] = from[kind][name] ?? own[kind][name];
    }
  }
  return out;
}
