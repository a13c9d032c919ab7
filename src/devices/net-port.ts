/**
 * What a network device sees of its Ethernet side (SimBricks' EthTx/EthRx): whole frames as bytes,
 * from the destination MAC to the end of the payload (the MAC adds preamble, FCS and padding). Devices
 * never see the Ethernet model itself; the builder adapts a port to this (ethernet/mac-port.ts).
 */
export interface NetReceiver {
  /** A frame arrived (its bytes are the receiver's to keep). */
  netReceive(frame: Uint8Array): void;
  /** The port can take a frame again after a refused `send`. */
  netReady(): void;
}

export interface NetPort {
  /** Hands a frame to the MAC; false (nothing sent) while its output buffer is full: wait for `netReady`. */
  send(frame: Uint8Array): boolean;
  attach(receiver: NetReceiver): void;
}

/** Ethernet header fields of a frame's bytes. */
export const ETH_HEADER_BYTES = 14;

export function frameDst(f: Uint8Array): number {
  return macAt(f, 0);
}

export function frameSrc(f: Uint8Array): number {
  return macAt(f, 6);
}

export function frameEtherType(f: Uint8Array): number {
  return (f[12] << 8) | f[13];
}

export function macAt(f: Uint8Array, i: number): number {
  return ((f[i] << 8) | f[i + 1]) * 2 ** 32 + (((f[i + 2] << 24) | (f[i + 3] << 16) | (f[i + 4] << 8) | f[i + 5]) >>> 0);
}

/** Writes an Ethernet header (destination, source, EtherType) at the start of `f`. */
export function writeEthHeader(f: Uint8Array, dst: number, src: number, etherType: number): void {
  putMac(f, 0, dst);
  putMac(f, 6, src);
  f[12] = etherType >>> 8;
  f[13] = etherType & 0xff;
}

function putMac(f: Uint8Array, i: number, mac: number): void {
  const hi = Math.floor(mac / 2 ** 32);
  const lo = mac % 2 ** 32;
  f[i] = (hi >>> 8) & 0xff;
  f[i + 1] = hi & 0xff;
  f[i + 2] = lo >>> 24;
  f[i + 3] = (lo >>> 16) & 0xff;
  f[i + 4] = (lo >>> 8) & 0xff;
  f[i + 5] = lo & 0xff;
}
