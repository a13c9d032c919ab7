import { encodedLength } from '../pcie/tlp-codec.js';
import type { StateDigest } from '../core/digest.js';
import type { Frame } from '../ethernet/frame.js';
import { digestTlp, type Tlp } from '../pcie/tlp.js';

/**
 * ExpEther's frame format is not public (FACTS.md). dconnect's choice, stated in docs/architecture.md:
 * EtherType 0x88B5 (IEEE 802 "local experimental" EtherType 1, free for non-product protocols) and a
 * 12-byte header: version/kind (1), flags (1), reserved (2), sequence number (4), cumulative ACK (4).
 * One TLP per frame, as in the HOTI 2006 description ("a PCIe packet is encapsulated in an Ethernet frame").
 */
export const EXPETHER_ETHERTYPE = 0x88b5;
export const EXPETHER_HEADER_BYTES = 12;

export type PduKind = 'tlp' | 'ack' | 'routes' | 'nak';

/** The missing sequence numbers a NAK names, inclusive (first <= last). */
export interface NakRange {
  first: number;
  last: number;
}

/** Bytes of a NAK PDU body: first (4) and last (4) missing sequence number. */
export const NAK_BODY_BYTES = 8;

/** A downstream port's routing state, as the host-side bridge distributes it to its group. */
export interface PortRoute {
  mac: number;
  secondaryBus: number;
  subordinateBus: number;
  /** Memory window, inclusive; limit < base means none. */
  memBase: number;
  memLimit: number;
}

/** Bytes of a routes PDU body: per port 6 (MAC) + 2 (bus range) + 8 (window). */
const ROUTE_ENTRY_BYTES = 16;

export class ExpEtherPdu {
  constructor(
    readonly kind: PduKind,
    /** Sequence number of a reliable PDU (tlp, routes); -1 for a bare ACK. */
    public seq: number,
    /** Cumulative acknowledgement: every sequence number <= ack was received in order; -1 for none. */
    public ack: number,
    readonly tlp: Tlp | null,
    readonly routes: PortRoute[] | null,
    /** A NAK's missing range (kind 'nak' only; like an ack it has no sequence number of its own). */
    readonly nak: NakRange | null = null,
  ) {}
  /**
   * Burst granularity: a burst of bare ACKs (frame `parts`) carries each one's cumulative value here,
   * oldest first (`ack` is the last); a burst of TLP frames has `seq` its first frame's and a burst `tlp`.
   */
  burstAcks: Float64Array | null = null;

  payloadBytes(): number {
    if (this.tlp) return EXPETHER_HEADER_BYTES + encodedLength(this.tlp);
    if (this.routes) return EXPETHER_HEADER_BYTES + 2 + this.routes.length * ROUTE_ENTRY_BYTES;
    if (this.nak) return EXPETHER_HEADER_BYTES + NAK_BODY_BYTES;
    return EXPETHER_HEADER_BYTES;
  }
}

/** A frame on a wire, for digests: its PDU with sequence and ACK numbers relative to their flows' bases. */
export function digestFrame(d: StateDigest, f: Frame, base: (fromMac: number, toMac: number) => number): void {
  d.num(f.src);
  d.num(f.dst);
  d.num(f.vlan);
  d.num(f.payloadBytes);
  const pdu = f.payload as ExpEtherPdu;
  if (!(pdu instanceof ExpEtherPdu)) {
    d.str('?');
    return;
  }
  d.str(pdu.kind);
  d.num(pdu.seq < 0 ? -1e9 : pdu.seq - base(f.src, f.dst));
  d.num(pdu.ack < 0 ? -1e9 : pdu.ack - base(f.dst, f.src));
  if (pdu.tlp) digestTlp(d, pdu.tlp);
  if (pdu.routes) d.str(JSON.stringify(pdu.routes));
  if (pdu.nak) {
    const b = base(f.dst, f.src);
    d.num(pdu.nak.first - b);
    d.num(pdu.nak.last - b);
  }
}
