/**
 * Ethernet II frames with an 802.1Q tag. In the simulator a frame carries its payload as an object
 * (the ExpEther PDU, which itself carries real TLP bytes) plus its encoded length, so no hop
 * re-serializes it; the live runtime encodes the same PDU to bytes.
 */
export const PREAMBLE_SFD_BYTES = 8;
export const MAC_HEADER_BYTES = 14; // destination, source, EtherType
export const VLAN_TAG_BYTES = 4; // 802.1Q TPID + TCI
export const FCS_BYTES = 4;
export const INTERFRAME_GAP_BYTES = 12;
/** Minimum frame from destination MAC to FCS is 64 B; with a VLAN tag the payload must be >= 42 B. */
export const MIN_TAGGED_PAYLOAD_BYTES = 42;
/** Standard maximum payload (no jumbo frames): the default of a topology's `ethernet.maxPayloadBytes`. */
export const MAX_PAYLOAD_BYTES = 1500;
/**
 * The largest payload any frame may carry: jumbo frames (9000 B, the common jumbo MTU). A topology's
 * `ethernet.maxPayloadBytes` (1500 by default) is its ports' limit (`EthPortParams.maxPayloadBytes`).
 */
export const JUMBO_MAX_PAYLOAD_BYTES = 9000;

export class Frame<P = unknown> {
  /**
   * A label for trace counters only, set by the layer that encapsulates: the frame carries a read
   * request, whose time waiting in output buffers ports count apart (`readQueuedPs`).
   */
  readRequest = false;
  /**
   * Burst granularity (pcie/burst.ts): the payload bytes of each of the frames this object stands for,
   * back to back (null: one frame; else `payloadBytes` is their sum), and when each is wholly
   * available at its current holder, ps (null: all at the time it is handed over).
   */
  readonly parts: Uint16Array | null = null;
  readyPs: Float64Array | null = null;

  constructor(
    readonly dst: number,
    readonly src: number,
    /** 802.1Q VLAN id (1..4094); ExpEther carries its group id here. */
    readonly vlan: number,
    readonly etherType: number,
    readonly payload: P,
    /** Bytes of payload after the EtherType (before padding). */
    readonly payloadBytes: number,
    parts: Uint16Array | null = null,
  ) {
    if (parts) {
      this.parts = parts;
      for (let i = 0; i < parts.length; i++) if (parts[i] > JUMBO_MAX_PAYLOAD_BYTES) throw new RangeError(`Ethernet payload of ${parts[i]} B exceeds ${JUMBO_MAX_PAYLOAD_BYTES} B (jumbo frames)`);
      return;
    }
    if (payloadBytes > JUMBO_MAX_PAYLOAD_BYTES) throw new RangeError(`Ethernet payload of ${payloadBytes} B exceeds ${JUMBO_MAX_PAYLOAD_BYTES} B (jumbo frames)`);
  }
}

/** Frames a frame object stands for (a burst's count, else 1). */
export function frameCount(f: Frame): number {
  return f.parts ? f.parts.length : 1;
}

/** The same frame, with its own ready times (a hop hands a burst on without touching the one it got). */
export function withReady<P>(f: Frame<P>, readyPs: Float64Array): Frame<P> {
  const g = new Frame(f.dst, f.src, f.vlan, f.etherType, f.payload, f.payloadBytes, f.parts);
  g.readRequest = f.readRequest;
  g.readyPs = readyPs;
  return g;
}

/** Bytes a frame occupies on the wire, including preamble, padding, FCS and the inter-frame gap. */
export function wireBytes(payloadBytes: number): number {
  const padded = payloadBytes < MIN_TAGGED_PAYLOAD_BYTES ? MIN_TAGGED_PAYLOAD_BYTES : payloadBytes;
  return PREAMBLE_SFD_BYTES + MAC_HEADER_BYTES + VLAN_TAG_BYTES + padded + FCS_BYTES + INTERFRAME_GAP_BYTES;
}

export function formatMac(mac: number): string {
  const hex = mac.toString(16).padStart(12, '0');
  return hex.match(/../g)!.join(':');
}
