import { Frame, JUMBO_MAX_PAYLOAD_BYTES } from '../ethernet/frame.js';
import { CableChannel, type EthPort } from '../ethernet/port.js';
import { constituentFrames, decodeBurstFrame, encodeBurstFrame, isTlpBurstFrame } from './burst-frames.js';
import { decodeFrame, encodeFrame } from './pdu-codec.js';
import { ExpEtherPdu } from './pdu.js';

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

  override toWire(frame: Frame): Uint8Array | BurstOnWire {
    if (frame.parts !== null && frame.readyPs !== null) return this.burstToWire(frame, frame.readyPs);
    const bytes = encodeFrame(frame);
    this.framesEncoded++;
    this.bytesEncoded += bytes.length;
    return bytes;
  }

  override fromWire(wire: unknown): Frame {
    if (wire instanceof Uint8Array) return decodeFrame(wire);
    const w = wire as BurstOnWire;
    const frame = w.tlps ? decodeBurstFrame(w.tlps, JUMBO_MAX_PAYLOAD_BYTES) : burstOf(w.frames!.map((b) => decodeFrame(b) as Frame<ExpEtherPdu>));
    frame.readyPs = w.readyPs.slice();
    return frame;
  }

  /**
   * A burst (burst granularity): TLP frames in the compact burst encoding (expether/burst-frames.ts,
   * as the live channel carries them), bare ACKs each encoded; its frames' arrival times travel beside
   * the bytes, as a frame's timing always does here.
   */
  private burstToWire(frame: Frame, readyPs: Float64Array): BurstOnWire {
    const n = frame.parts!.length;
    this.framesEncoded += n;
    if (isTlpBurstFrame(frame)) {
      const tlps = encodeBurstFrame(frame);
      this.bytesEncoded += tlps.length;
      return { tlps, frames: null, readyPs: readyPs.slice() };
    }
    const frames = constituentFrames(frame).map((f) => encodeFrame(f));
    for (const a of frames) this.bytesEncoded += a.length;
    return { tlps: null, frames, readyPs: readyPs.slice() };
  }
}

/** A burst on a bytes cable: its frames' bytes (a burst record, or each frame) and their arrival times. */
interface BurstOnWire {
  tlps: Uint8Array | null;
  frames: Uint8Array[] | null;
  readyPs: Float64Array;
}

/**
 * Decoded frames back into the burst a bridge sent: bare ACKs (expether/bridge.ts deliveredBurst), or
 * one TLP frame (a burst the window cut to one constituent).
 */
function burstOf(frames: Frame<ExpEtherPdu>[]): Frame<ExpEtherPdu> {
  const first = frames[0];
  if (first.payload.kind !== 'ack') {
    if (frames.length !== 1) throw new Error(`bytes channel: a burst of ${frames.length} TLP frames not in the burst encoding (burst-frames.ts isTlpBurstFrame)`);
    const one = new Frame(first.dst, first.src, first.vlan, first.etherType, first.payload, first.payloadBytes, Uint16Array.of(first.payloadBytes));
    one.readRequest = first.readRequest;
    return one;
  }
  const values = Float64Array.from(frames, (f) => f.payload.ack);
  const pdu = new ExpEtherPdu('ack', -1, values[values.length - 1], null, null);
  pdu.burstAcks = values;
  const parts = Uint16Array.from(frames, (f) => f.payloadBytes);
  return new Frame(first.dst, first.src, first.vlan, first.etherType, pdu, parts.reduce((a, b) => a + b, 0), parts);
}

/** The `connect` of buildFabric that joins two ports with a BytesCableChannel. */
export function connectBytes(a: EthPort, b: EthPort, latencyNs: number): BytesCableChannel {
  return new BytesCableChannel(a, b, latencyNs);
}
