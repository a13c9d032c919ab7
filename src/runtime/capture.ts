/**
 * Captures (issue "Proof of path"): the frames seen on named cables, as real bytes from the ExpEther
 * frame codec, stamped with the simulated time their first bit left the sender (so a capture is in
 * time order, as a tap at the sender would see it). A capture is a channel
 * the builder's `connect` puts on the named cables; every other cable stays the plain one, so a
 * capture changes nothing but what is recorded (timing, results: identical).
 *
 * Cable names: the host-side bridge's cable is `host`; a box slot's cable is the slot's name
 * (`box0.slot2`); a cable between two switches is `sw0-sw1` (by their names). `listLinks` gives them
 * for a topology (`dconnect links`).
 */
import { DconnectError } from '../core/errors.js';
import type { EthPort } from '../ethernet/port.js';
import type { Frame } from '../ethernet/frame.js';
import { encodeFrame } from '../expether/pdu-codec.js';
import { buildFabric, connectCable, type ConnectFn } from '../topology/builder.js';
import type { Topology } from '../topology/schema.js';

/** A cable's name from its two ports' names (see the file comment). */
export function linkName(a: string, b: string): string {
  if (a === 'hostBridge' || b === 'hostBridge') return 'host';
  // Another host's bridge port is `<name>Bridge` (topology extraHosts): its cable is the host's name.
  const extra = [a, b].find((n) => /^[A-Za-z][\w-]*Bridge$/.test(n));
  if (extra) return extra.slice(0, -'Bridge'.length);
  const slot = [a, b].find((n) => /^[A-Za-z][\w-]*\.slot\d+$/.test(n));
  if (slot) return slot;
  const sw = (n: string) => n.replace(/\.p\d+$/, '');
  return `${sw(a)}-${sw(b)}`;
}

/** Every cable's name in a topology, in the order the builder lays them. */
export function listLinks(topology: Topology): string[] {
  const names: string[] = [];
  buildFabric(topology, {
    seed: 1,
    connect: (a, b, ns) => {
      names.push(linkName(a.name, b.name));
      return connectCable(a, b, ns, '');
    },
  });
  return names;
}

/** Refuses link names the topology does not have, naming the option and listing the links. */
export function checkLinks(topology: Topology, links: readonly string[], option: string): void {
  const known = listLinks(topology);
  for (const l of links) {
    if (!known.includes(l)) throw new DconnectError('BAD_OPTION', `${option}: no link '${l}' in topology ${topology.name}`, `links: ${known.join(', ')} (dconnect links lists them)`);
  }
}

/** Receives every captured frame: the cable's name, the time (ps), the frame's bytes (Ethernet header on). */
export type CaptureSink = (link: string, timePs: number, frame: Uint8Array) => void;

/**
 * A channel factory that captures on `links` (names as `listLinks` gives them) and lays `inner`'s
 * cables (default: plain ones; e.g. faulty ones from runtime/faults.ts) everywhere. A captured cable is
 * the inner cable itself, its `carry` tapped at the sender: the capture shows what the sender
 * transmitted, whatever the cable then does to it (loses, corrupts, duplicates, delays), and the
 * cable keeps its class, so its digest (the fast fidelity's) is the inner cable's own. `enabled` lets a
 * long-lived fabric (a live box) capture only sometimes: no frame is encoded while it says no.
 */
export function captureConnect(topology: Topology, links: string[], sink: CaptureSink, inner: ConnectFn = connectCable, enabled: () => boolean = () => true): ConnectFn {
  checkLinks(topology, links, '--capture');
  const wanted = new Set(links);
  return (a, b, ns, name) => {
    const ch = inner(a, b, ns, name);
    const link = linkName(a.name, b.name);
    if (!wanted.has(link)) return ch;
    const carry = ch.carry.bind(ch);
    ch.carry = (from: EthPort, frame: Frame, serializedInPs: number) => {
      if (enabled()) sink(link, from.scheduler.now(), encodeFrame(frame));
      carry(from, frame, serializedInPs);
    };
    return ch;
  };
}
