/**
 * Captures (issue "Proof of path"): the frames seen on named cables, as real bytes from the ExpEther
 * frame codec, stamped with the simulated time their first bit left the sender, as a tap at the
 * sender would see it. A port commits a frame before it starts (it may wait behind the port's
 * backlog), so frames are held in time order until no earlier one can come (`CaptureOrder`) and reach
 * the sink in time order. A capture is a channel
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
import { constituentFrames } from '../expether/burst-frames.js';
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
  return cableEnds(topology).map((c) => c.cable);
}

/** Every cable with its two ports' names (`a`, `b`: the trace names `eth.<a>`, `eth.<b>` count what each sends), in the builder's order. */
export function cableEnds(topology: Topology): { cable: string; a: string; b: string }[] {
  const out: { cable: string; a: string; b: string }[] = [];
  buildFabric(topology, {
    seed: 1,
    connect: (a, b, ns) => {
      out.push({ cable: linkName(a.name, b.name), a: a.name, b: b.name });
      return connectCable(a, b, ns, '');
    },
  });
  return out;
}

/** Refuses link names the topology does not have, naming the option and listing the links. */
export function checkLinks(topology: Topology, links: readonly string[], option: string): void {
  const known = listLinks(topology);
  for (const l of links) {
    if (!known.includes(l)) throw new DconnectError('BAD_OPTION', `${option}: no link '${l}' in topology ${topology.name}`, `links: ${known.join(', ')} (dconnect links lists them)`);
  }
}

/**
 * The capture file's format from its name: pcapng (one interface per cable, named after it) when it
 * ends in `.pcapng`, else classic pcap, which has no interfaces and so takes one cable only (a capture
 * of several into it could not say which cable a frame was on): refused, naming the file to use.
 */
export function captureFormat(file: string, links: readonly string[], option = '--pcap'): 'pcap' | 'pcapng' {
  if (/\.pcapng$/i.test(file)) return 'pcapng';
  if (links.length > 1) throw new DconnectError('BAD_OPTION', `${option} '${file}': a capture of ${links.length} cables needs pcapng, which says which cable each frame was on`, `name the file ${file.replace(/\.pcap$/i, '')}.pcapng`);
  return 'pcap';
}

/** Receives every captured frame in time order: the cable's name, the time its first bit left (ps), the frame's bytes (Ethernet header on). */
export type CaptureSink = (link: string, timePs: number, frame: Uint8Array) => void;

/** A channel factory that captures; `flush()` hands the sink the frames still held (call it when the run ends). */
export type CaptureConnectFn = ConnectFn & { flush(): void };

/**
 * Puts captured frames back in time order. A frame is committed at `nowPs` and starts at `timePs >=
 * nowPs` (after the port's backlog: at most its bounded output buffer's serialization time), so once
 * the simulation has reached `nowPs`, no frame committed later can start before it: every held frame
 * stamped at or before it is released. Ties keep commit order. Holds at most the frames committed
 * within one output buffer's drain time of now (bounded by the ports' `queueLimitBytes`).
 */
export class CaptureOrder {
  private readonly heap: { timePs: number; seq: number; link: string; frame: Uint8Array }[] = [];
  private seq = 0;

  constructor(private readonly sink: CaptureSink) {}

  add(link: string, timePs: number, frame: Uint8Array, nowPs: number): void {
    this.release(nowPs);
    const h = this.heap;
    h.push({ timePs, seq: this.seq++, link, frame });
    for (let i = h.length - 1; i > 0; ) {
      const p = (i - 1) >> 1;
      if (!this.before(h[i], h[p])) break;
      [h[i], h[p]] = [h[p], h[i]];
      i = p;
    }
    this.release(nowPs);
  }

  /** Hands the sink every held frame that started at or before `nowPs` (all of them by default). */
  release(nowPs = Infinity): void {
    const h = this.heap;
    while (h.length > 0 && h[0].timePs <= nowPs) {
      const top = h[0];
      const last = h.pop()!;
      if (h.length > 0) {
        h[0] = last;
        for (let i = 0; ; ) {
          const l = 2 * i + 1;
          const r = l + 1;
          let m = i;
          if (l < h.length && this.before(h[l], h[m])) m = l;
          if (r < h.length && this.before(h[r], h[m])) m = r;
          if (m === i) break;
          [h[i], h[m]] = [h[m], h[i]];
          i = m;
        }
      }
      this.sink(top.link, top.timePs, top.frame);
    }
  }

  private before(a: { timePs: number; seq: number }, b: { timePs: number; seq: number }): boolean {
    return a.timePs < b.timePs || (a.timePs === b.timePs && a.seq < b.seq);
  }
}

/**
 * A channel factory that captures on `links` (names as `listLinks` gives them) and lays `inner`'s
 * cables (default: plain ones; e.g. faulty ones from runtime/faults.ts) everywhere. A captured cable is
 * the inner cable itself, its `carry` tapped at the sender: the capture shows what the sender
 * transmitted, whatever the cable then does to it (loses, corrupts, duplicates, delays), and the
 * cable keeps its class, so its digest (the fast fidelity's) is the inner cable's own. `enabled` lets a
 * long-lived fabric (a live box) capture only sometimes: no frame is encoded while it says no.
 */
export function captureConnect(topology: Topology, links: string[], sink: CaptureSink, inner: ConnectFn = connectCable, enabled: () => boolean = () => true): CaptureConnectFn {
  checkLinks(topology, links, '--capture');
  const wanted = new Set(links);
  const order = new CaptureOrder(sink);
  const connect: ConnectFn = (a, b, ns, name) => {
    const ch = inner(a, b, ns, name);
    const link = linkName(a.name, b.name);
    if (!wanted.has(link)) return ch;
    const carry = ch.carry.bind(ch);
    ch.carry = (from: EthPort, frame: Frame, serializedInPs: number) => {
      if (enabled()) {
        // The port hands over a frame when it commits it; its last bit leaves serializedInPs from now
        // (a burst's frames each at their own time, as the frames per-TLP would have sent).
        const now = from.scheduler.now();
        const done = frame.readyPs;
        if (frame.parts === null || done === null) order.add(link, now + serializedInPs - from.serializationPs(frame.payloadBytes), encodeFrame(frame), now);
        else constituentFrames(frame).forEach((f, i) => order.add(link, done[i] - from.serializationPs(f.payloadBytes), encodeFrame(f), now));
      }
      carry(from, frame, serializedInPs);
    };
    return ch;
  };
  return Object.assign(connect, { flush: () => order.release() });
}
