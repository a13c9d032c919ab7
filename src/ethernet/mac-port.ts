import { labelCallback } from '../core/digest.js';
import { Frame, MAX_PAYLOAD_BYTES, wireBytes } from './frame.js';
import type { EthPort, FrameReceiver } from './port.js';

/** The untagged frames a NIC and its clients exchange ride VLAN 1, the default VLAN (802.1Q's PVID) of the model's tagging switch. */
export const DEFAULT_VLAN = 1;
const HEADER_BYTES = 14;

/** What a station behind a MacPort receives (devices/net-port.ts's NetReceiver, structurally). */
export interface StationReceiver {
  netReceive(frame: Uint8Array): void;
  netReady(): void;
}

/**
 * A station's MAC on an Ethernet port: frames as bytes (destination, source, EtherType, payload) in,
 * the Ethernet model's frames out. A full output buffer refuses the frame (nothing dropped, nothing
 * counted) and calls `netReady` once a maximum-size frame's time has passed, so a NIC or client paces
 * itself on its own line rate instead of losing frames in its own queue.
 */
export class MacPort implements FrameReceiver {
  private receiver: StationReceiver | null = null;
  private waiting = false;
  private readonly retryPs: number;

  constructor(readonly eth: EthPort) {
    eth.owner = this;
    this.retryPs = Math.ceil((wireBytes(MAX_PAYLOAD_BYTES) * 8e12) / eth.params.rateBitsPerSec);
  }

  attach(r: StationReceiver): void {
    this.receiver = r;
  }

  send(bytes: Uint8Array): boolean {
    if (bytes.length < HEADER_BYTES || bytes.length - HEADER_BYTES > MAX_PAYLOAD_BYTES) throw new RangeError(`${this.eth.name}: a frame of ${bytes.length} B is outside 14..1514 B`);
    const payloadBytes = bytes.length - HEADER_BYTES;
    if (!this.eth.hasRoom(payloadBytes)) {
      if (!this.waiting) {
        this.waiting = true;
        this.eth.scheduler.schedule(this.retryPs, this.retry);
      }
      return false;
    }
    return this.eth.send(rawFrame(bytes));
  }

  private readonly retry = labelCallback(() => {
    this.waiting = false;
    this.receiver?.netReady();
  }, 'mac>retry');

  receiveFrame(frame: Frame): void {
    const bytes = frame.payload;
    if (!(bytes instanceof Uint8Array)) return; // not a station's frame (an ExpEther PDU flooded here): a NIC's MAC filter drops it
    this.receiver?.netReceive(bytes);
  }
}

/** The model's frame for a station's bytes: its header fields, and the whole frame as the payload object. */
export function rawFrame(bytes: Uint8Array): Frame<Uint8Array> {
  const dst = macOf(bytes, 0);
  const src = macOf(bytes, 6);
  return new Frame(dst, src, DEFAULT_VLAN, (bytes[12] << 8) | bytes[13], bytes, bytes.length - HEADER_BYTES);
}

function macOf(b: Uint8Array, i: number): number {
  return ((b[i] << 8) | b[i + 1]) * 2 ** 32 + (((b[i + 2] << 24) | (b[i + 3] << 16) | (b[i + 4] << 8) | b[i + 5]) >>> 0);
}

/** A station frame on the wire: its bytes with the 802.1Q tag inserted after the source MAC. */
export function encodeStationFrame(frame: Frame<Uint8Array>): Uint8Array {
  const b = frame.payload;
  const out = new Uint8Array(b.length + 4);
  out.set(b.subarray(0, 12), 0);
  out[12] = 0x81;
  out[13] = 0x00;
  out[14] = frame.vlan >>> 8;
  out[15] = frame.vlan & 0xff;
  out.set(b.subarray(12), 16);
  return out;
}

/** The inverse of encodeStationFrame (the tag removed; the bytes are a fresh copy). */
export function decodeStationFrame(wire: Uint8Array): Frame<Uint8Array> {
  const b = new Uint8Array(wire.length - 4);
  b.set(wire.subarray(0, 12), 0);
  b.set(wire.subarray(16), 12);
  const f = rawFrame(b);
  return new Frame(f.dst, f.src, ((wire[14] << 8) | wire[15]) & 0xfff, f.etherType, b, f.payloadBytes);
}
