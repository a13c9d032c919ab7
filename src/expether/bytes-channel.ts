import type { Frame } from '../ethernet/frame.js';
import { CableChannel, type EthPort } from '../ethernet/port.js';
import { decodeFrame, encodeFrame } from './pdu-codec.js';

/**
 * A cable that carries bytes: every frame is encoded whole (Ethernet header, 802.1Q tag, ExpEther
 * header, TLP; pdu-codec.ts) when the sender commits it, and the far end receives a frame decoded
 * afresh from those bytes. The receiver therefore shares no object with the sender (not the PDU the
 * sender keeps for retransmission, not the TLP, not its payload), as across a real network. Timing is
 * the plain cable's: the port serialized `payloadBytes`, which equal the encoded PDU's length (checked).
 * Select it with `buildFabric(topology, { seed, connect: connectBytes })`.
 */
export class BytesCableChannel extends CableChannel {
  /** Frames and bytes (Ethernet header and PDU, no preamble, padding or FCS) encoded so far. */
  framesEncoded = 0;
  bytesEncoded = 0;

  override toWire(frame: Frame): Uint8Array {
    const bytes = encodeFrame(frame);
    this.framesEncoded++;
    this.bytesEncoded += bytes.length;
    return bytes;
  }

  override fromWire(wire: unknown): Frame {
    return decodeFrame(wire as Uint8Array);
  }
}

/** The `connect` of buildFabric that joins two ports with a BytesCableChannel. */
export function connectBytes(a: EthPort, b: EthPort, latencyNs: number): BytesCableChannel {
  return new BytesCableChannel(a, b, latencyNs);
}
