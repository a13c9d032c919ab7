/**
 * The ExpEther PDU as bytes: what a frame carries after its EtherType, and the whole tagged Ethernet
 * frame around it. dconnect's own layout (ExpEther's is not public, see pdu.ts); big-endian, byte 0
 * first, as on the wire. docs/architecture.md "The ExpEther PDU on the wire" has the same tables.
 *
 * ExpEther header, EXPETHER_HEADER_BYTES = 12:
 *
 *   byte  0     version (bits 7:4, = 1) | kind (bits 3:0: 1 tlp, 2 ack, 3 routes, 4 nak)
 *   byte  1     flags: bit 0 SEQ (the sequence field is valid), bit 1 ACK (the ack field is valid);
 *               bits 7:2 reserved, 0
 *   bytes 2-3   body length: bytes after the header (tlp: the encoded TLP; ack: 0; routes: 2 + 16 n; nak: 8)
 *   bytes 4-7   sequence number (0 when SEQ is clear; the model's seq is then -1)
 *   bytes 8-11  cumulative ACK (0 when ACK is clear; the model's ack is then -1)
 *
 * Body: tlp: one TLP as pcie/tlp-codec.ts encodes it (PCIe Base Spec §2.2, header then payload).
 * routes: entry count (2 bytes), then per downstream port 16 bytes: MAC (6), secondary bus (1),
 * subordinate bus (1), memory window base (4) and inclusive limit (4; limit < base: no window).
 * nak: first (4) and last (4) missing sequence number, first <= last (selective repeat: the sender
 * resends exactly those). ack: none. A tlp or routes PDU always has SEQ set, an ack or nak PDU never.
 *
 * The group id is not in the header: it is the frame's 802.1Q VLAN id. A whole frame
 * (`encodeExpEtherFrame`) is: destination MAC (6), source MAC (6), TPID 0x8100 (2), TCI (2: PCP 0,
 * DEI 0, VLAN id in bits 11:0), EtherType 0x88B5 (2), then the PDU; no padding, no FCS (the wire size
 * of a frame is still ethernet/frame.ts's `wireBytes(payloadBytes)`).
 *
 * Every error is a DconnectError 'BAD_PDU' naming the field; a TLP the TLP codec rejects is reported
 * with the codec's message.
 */
import { DconnectError } from '../core/errors.js';
import { Frame, JUMBO_MAX_PAYLOAD_BYTES, MAC_HEADER_BYTES, VLAN_TAG_BYTES } from '../ethernet/frame.js';
import { decodeStationFrame, encodeStationFrame } from '../ethernet/mac-port.js';
import { decodeTlp, encodedLength, encodeTlpInto, get32, put32 } from '../pcie/tlp-codec.js';
import { EXPETHER_ETHERTYPE, EXPETHER_HEADER_BYTES, ExpEtherPdu, NAK_BODY_BYTES, type PduKind, type PortRoute } from './pdu.js';

export const EXPETHER_VERSION = 1;
const KIND_CODE: Record<PduKind, number> = { tlp: 1, ack: 2, routes: 3, nak: 4 };
const KIND_OF_CODE: Array<PduKind | undefined> = [undefined, 'tlp', 'ack', 'routes', 'nak'];
export const FLAG_SEQ = 0x01;
export const FLAG_ACK = 0x02;
const ROUTE_ENTRY_BYTES = 16;
const ROUTE_COUNT_BYTES = 2;
const MAX_U32 = 0xffff_ffff;
const MAX_MAC = 2 ** 48 - 1;
/** Bytes of the Ethernet header in an encoded frame: MACs, 802.1Q tag, EtherType. */
export const FRAME_HEADER_BYTES = MAC_HEADER_BYTES + VLAN_TAG_BYTES;
const TPID_8021Q = 0x8100;

function bad(message: string): DconnectError {
  return new DconnectError('BAD_PDU', message);
}

function checkUint(v: number, max: number, what: string): void {
  if (!(Number.isInteger(v) && v >= 0 && v <= max)) throw bad(`cannot encode ExpEther PDU: ${what} ${v} is not an integer in 0..${max}`);
}

/** Bytes of the encoded PDU (header and body); equals `pdu.payloadBytes()`. */
export function encodedPduLength(pdu: ExpEtherPdu): number {
  return EXPETHER_HEADER_BYTES + bodyLength(pdu);
}

function bodyLength(pdu: ExpEtherPdu): number {
  switch (pdu.kind) {
    case 'tlp':
      if (!pdu.tlp) throw bad('cannot encode ExpEther PDU: kind tlp but tlp is null');
      return encodedLength(pdu.tlp);
    case 'routes':
      if (!pdu.routes) throw bad('cannot encode ExpEther PDU: kind routes but routes is null');
      return ROUTE_COUNT_BYTES + pdu.routes.length * ROUTE_ENTRY_BYTES;
    case 'ack':
      return 0;
    case 'nak':
      if (!pdu.nak) throw bad('cannot encode ExpEther PDU: kind nak but its range is null');
      return NAK_BODY_BYTES;
    default:
      throw bad(`cannot encode ExpEther PDU: kind ${String(pdu.kind)} is not tlp, ack, routes or nak`);
  }
}

/** Encodes a PDU into a fresh array (12-byte header, then the body). */
export function encodePdu(pdu: ExpEtherPdu): Uint8Array {
  const out = new Uint8Array(encodedPduLength(pdu));
  encodePduInto(pdu, out, 0);
  return out;
}

/** Encodes a PDU into `out` at `offset`; returns the bytes written. */
export function encodePduInto(pdu: ExpEtherPdu, out: Uint8Array, offset: number): number {
  const body = bodyLength(pdu);
  const total = EXPETHER_HEADER_BYTES + body;
  if (offset < 0 || out.length - offset < total) throw new RangeError(`encodePduInto: ${total} bytes do not fit at offset ${offset} of a ${out.length}-byte buffer`);
  if (body > 0xffff) throw bad(`cannot encode ExpEther PDU: body length ${body} exceeds 65535`);
  if (pdu.kind === 'tlp' && pdu.routes) throw bad('cannot encode ExpEther PDU: kind tlp also carries routes');
  if (pdu.kind === 'routes' && pdu.tlp) throw bad('cannot encode ExpEther PDU: kind routes also carries a tlp');
  if ((pdu.kind === 'ack' || pdu.kind === 'nak') && (pdu.tlp || pdu.routes)) throw bad(`cannot encode ExpEther PDU: kind ${pdu.kind} carries a tlp or routes`);
  if (pdu.kind !== 'nak' && pdu.nak) throw bad(`cannot encode ExpEther PDU: kind ${pdu.kind} also carries a NAK range`);
  let flags = 0;
  if (pdu.kind === 'ack' || pdu.kind === 'nak') {
    if (pdu.seq !== -1) throw bad(`cannot encode ExpEther PDU: ${pdu.kind === 'ack' ? 'an ack' : 'a nak'} has no sequence number, but seq is ${pdu.seq} (expected -1)`);
  } else {
    checkUint(pdu.seq, MAX_U32, `${pdu.kind} seq`);
    flags |= FLAG_SEQ;
  }
  if (pdu.ack !== -1) {
    checkUint(pdu.ack, MAX_U32, 'ack');
    flags |= FLAG_ACK;
  }
  out[offset] = (EXPETHER_VERSION << 4) | KIND_CODE[pdu.kind];
  out[offset + 1] = flags;
  out[offset + 2] = body >>> 8;
  out[offset + 3] = body & 0xff;
  put32(out, offset + 4, flags & FLAG_SEQ ? pdu.seq : 0);
  put32(out, offset + 8, flags & FLAG_ACK ? pdu.ack : 0);
  let i = offset + EXPETHER_HEADER_BYTES;
  if (pdu.nak) {
    const { first, last } = pdu.nak;
    checkUint(first, MAX_U32, 'nak first');
    checkUint(last, MAX_U32, 'nak last');
    if (last < first) throw bad(`cannot encode ExpEther PDU: nak range ${first}..${last} is empty (last < first)`);
    put32(out, i, first);
    put32(out, i + 4, last);
  } else if (pdu.tlp) {
    try {
      encodeTlpInto(pdu.tlp, out, i);
    } catch (e) {
      if (e instanceof DconnectError) throw bad(`cannot encode ExpEther PDU: tlp: ${e.message}`);
      throw e;
    }
  } else if (pdu.routes) {
    const routes = pdu.routes;
    checkUint(routes.length, 0xffff, 'route count');
    out[i] = routes.length >>> 8;
    out[i + 1] = routes.length & 0xff;
    i += ROUTE_COUNT_BYTES;
    for (let k = 0; k < routes.length; k++, i += ROUTE_ENTRY_BYTES) {
      const r = routes[k];
      checkUint(r.mac, MAX_MAC, `routes[${k}].mac`);
      checkUint(r.secondaryBus, 0xff, `routes[${k}].secondaryBus`);
      checkUint(r.subordinateBus, 0xff, `routes[${k}].subordinateBus`);
      checkUint(r.memBase, MAX_U32, `routes[${k}].memBase`);
      checkUint(r.memLimit, MAX_U32, `routes[${k}].memLimit`);
      putMac(out, i, r.mac);
      out[i + 6] = r.secondaryBus;
      out[i + 7] = r.subordinateBus;
      put32(out, i + 8, r.memBase);
      put32(out, i + 12, r.memLimit);
    }
  }
  return total;
}

/**
 * Decodes one PDU occupying all of `bytes`. The result shares nothing with `bytes` (a TLP's payload
 * is copied). Throws DconnectError 'BAD_PDU' naming the field on any malformed input.
 */
export function decodePdu(bytes: Uint8Array): ExpEtherPdu {
  const n = bytes.length;
  if (n < EXPETHER_HEADER_BYTES) throw bad(`ExpEther PDU is ${n} bytes, shorter than its ${EXPETHER_HEADER_BYTES}-byte header`);
  const b0 = bytes[0]!;
  const version = b0 >>> 4;
  if (version !== EXPETHER_VERSION) throw bad(`ExpEther PDU version is ${version}, expected ${EXPETHER_VERSION} (byte 0 = 0x${b0.toString(16)})`);
  const kind = KIND_OF_CODE[b0 & 0x0f];
  if (kind === undefined) throw bad(`ExpEther PDU kind is ${b0 & 0x0f}, not 1 (tlp), 2 (ack), 3 (routes) or 4 (nak)`);
  const flags = bytes[1]!;
  if (flags & ~(FLAG_SEQ | FLAG_ACK)) throw bad(`ExpEther PDU flags 0x${flags.toString(16)} set reserved bits (only 0x1 SEQ and 0x2 ACK are defined)`);
  const body = (bytes[2]! << 8) | bytes[3]!;
  if (n - EXPETHER_HEADER_BYTES !== body) throw bad(`ExpEther PDU length field says ${body} body bytes but ${n - EXPETHER_HEADER_BYTES} follow the header`);
  const seqField = get32(bytes, 4);
  const ackField = get32(bytes, 8);
  const hasSeq = (flags & FLAG_SEQ) !== 0;
  const unsequenced = kind === 'ack' || kind === 'nak';
  if (unsequenced ? hasSeq : !hasSeq) throw bad(`ExpEther ${kind} PDU has the SEQ flag ${hasSeq ? 'set' : 'clear'} (${unsequenced ? `${kind === 'ack' ? 'an ack' : 'a nak'} has no sequence number` : 'it is sent reliably and must have one'})`);
  if (!hasSeq && seqField !== 0) throw bad(`ExpEther PDU sequence field is ${seqField} but the SEQ flag is clear (must be 0)`);
  const hasAck = (flags & FLAG_ACK) !== 0;
  if (!hasAck && ackField !== 0) throw bad(`ExpEther PDU ack field is ${ackField} but the ACK flag is clear (must be 0)`);
  const seq = hasSeq ? seqField : -1;
  const ack = hasAck ? ackField : -1;
  switch (kind) {
    case 'ack':
      if (body !== 0) throw bad(`ExpEther ack PDU has a ${body}-byte body, but an ack has none`);
      return new ExpEtherPdu('ack', seq, ack, null, null);
    case 'nak': {
      if (body !== NAK_BODY_BYTES) throw bad(`ExpEther nak PDU has a ${body}-byte body, expected ${NAK_BODY_BYTES} (first and last missing sequence number)`);
      const first = get32(bytes, EXPETHER_HEADER_BYTES);
      const last = get32(bytes, EXPETHER_HEADER_BYTES + 4);
      if (last < first) throw bad(`ExpEther nak PDU names ${first}..${last}, an empty range (last < first)`);
      return new ExpEtherPdu('nak', seq, ack, null, null, { first, last });
    }
    case 'tlp': {
      if (body === 0) throw bad('ExpEther tlp PDU has an empty body (no TLP)');
      try {
        return new ExpEtherPdu('tlp', seq, ack, decodeTlp(bytes.subarray(EXPETHER_HEADER_BYTES)), null);
      } catch (e) {
        if (e instanceof DconnectError) throw bad(`ExpEther tlp PDU: bad TLP: ${e.message}`);
        throw e;
      }
    }
    case 'routes': {
      if (body < ROUTE_COUNT_BYTES) throw bad(`ExpEther routes PDU body is ${body} bytes, shorter than its ${ROUTE_COUNT_BYTES}-byte route count`);
      let i = EXPETHER_HEADER_BYTES;
      const count = (bytes[i]! << 8) | bytes[i + 1]!;
      const want = ROUTE_COUNT_BYTES + count * ROUTE_ENTRY_BYTES;
      if (body !== want) throw bad(`ExpEther routes PDU route count says ${count} entries (${want} body bytes) but the body is ${body} bytes`);
      i += ROUTE_COUNT_BYTES;
      const routes: PortRoute[] = [];
      for (let k = 0; k < count; k++, i += ROUTE_ENTRY_BYTES) {
        routes.push({ mac: getMac(bytes, i), secondaryBus: bytes[i + 6]!, subordinateBus: bytes[i + 7]!, memBase: get32(bytes, i + 8), memLimit: get32(bytes, i + 12) });
      }
      return new ExpEtherPdu('routes', seq, ack, null, routes);
    }
  }
}

/** Encodes an ExpEther frame whole: Ethernet header with its 802.1Q tag, then the PDU (see the top of this file). */
export function encodeExpEtherFrame(frame: Frame): Uint8Array {
  const pdu = frame.payload;
  if (!(pdu instanceof ExpEtherPdu)) throw bad(`cannot encode frame ${frame.src.toString(16)} -> ${frame.dst.toString(16)}: its payload is not an ExpEther PDU`);
  if (frame.etherType !== EXPETHER_ETHERTYPE) throw bad(`cannot encode frame: EtherType 0x${frame.etherType.toString(16)} is not ExpEther's 0x${EXPETHER_ETHERTYPE.toString(16)}`);
  checkUint(frame.dst, MAX_MAC, 'frame dst MAC');
  checkUint(frame.src, MAX_MAC, 'frame src MAC');
  checkUint(frame.vlan, 0xfff, 'frame VLAN id');
  const len = encodedPduLength(pdu);
  if (len !== frame.payloadBytes) throw bad(`cannot encode frame: its payloadBytes is ${frame.payloadBytes} but its PDU encodes to ${len} bytes`);
  const out = new Uint8Array(FRAME_HEADER_BYTES + len);
  putMac(out, 0, frame.dst);
  putMac(out, 6, frame.src);
  out[12] = TPID_8021Q >>> 8;
  out[13] = TPID_8021Q & 0xff;
  out[14] = frame.vlan >>> 8;
  out[15] = frame.vlan & 0xff;
  out[16] = EXPETHER_ETHERTYPE >>> 8;
  out[17] = EXPETHER_ETHERTYPE & 0xff;
  encodePduInto(pdu, out, FRAME_HEADER_BYTES);
  return out;
}

/**
 * Decodes a frame `encodeExpEtherFrame` made into a fresh Frame and PDU. `readRequest` (a trace
 * label) is set as the bridge sets it: the frame carries a memory read request.
 */
export function decodeExpEtherFrame(bytes: Uint8Array): Frame<ExpEtherPdu> {
  const n = bytes.length;
  if (n < FRAME_HEADER_BYTES + EXPETHER_HEADER_BYTES) throw bad(`ExpEther frame is ${n} bytes, shorter than its ${FRAME_HEADER_BYTES}-byte Ethernet header and ${EXPETHER_HEADER_BYTES}-byte ExpEther header`);
  const tpid = (bytes[12]! << 8) | bytes[13]!;
  if (tpid !== TPID_8021Q) throw bad(`ExpEther frame TPID is 0x${tpid.toString(16)}, expected the 802.1Q tag 0x8100`);
  const tci = (bytes[14]! << 8) | bytes[15]!;
  if (tci & 0xf000) throw bad(`ExpEther frame TCI 0x${tci.toString(16)} sets PCP/DEI bits (dconnect sends 0)`);
  const etherType = (bytes[16]! << 8) | bytes[17]!;
  if (etherType !== EXPETHER_ETHERTYPE) throw bad(`frame EtherType is 0x${etherType.toString(16)}, not ExpEther's 0x${EXPETHER_ETHERTYPE.toString(16)}`);
  const payloadBytes = n - FRAME_HEADER_BYTES;
  // The codec knows no topology: any frame up to jumbo size decodes; the receiving port's MTU is the channel's to enforce.
  if (payloadBytes > JUMBO_MAX_PAYLOAD_BYTES) throw bad(`ExpEther frame payload is ${payloadBytes} bytes, more than a jumbo frame's ${JUMBO_MAX_PAYLOAD_BYTES}`);
  const pdu = decodePdu(bytes.subarray(FRAME_HEADER_BYTES));
  const frame = new Frame<ExpEtherPdu>(getMac(bytes, 0), getMac(bytes, 6), tci, etherType, pdu, payloadBytes);
  frame.readRequest = pdu.tlp !== null && pdu.tlp.kind === 'MRd';
  return frame;
}

function putMac(out: Uint8Array, i: number, mac: number): void {
  const hi = Math.floor(mac / 2 ** 32);
  out[i] = hi >>> 8;
  out[i + 1] = hi & 0xff;
  put32(out, i + 2, mac - hi * 2 ** 32);
}

function getMac(b: Uint8Array, i: number): number {
  return ((b[i]! << 8) | b[i + 1]!) * 2 ** 32 + get32(b, i + 2);
}

/**
 * Any frame of the fabric as bytes: an ExpEther frame through its codec, a station's frame (a NIC's or
 * a client's, whose payload is its bytes: ethernet/mac-port.ts) with its tag inserted. Channels that
 * carry bytes (bytes mode, captures) use this pair.
 */
export function encodeFrame(frame: Frame): Uint8Array {
  return frame.payload instanceof Uint8Array ? encodeStationFrame(frame as Frame<Uint8Array>) : encodeExpEtherFrame(frame);
}

export function decodeFrame(bytes: Uint8Array): Frame {
  const etherType = bytes.length >= FRAME_HEADER_BYTES ? (bytes[16]! << 8) | bytes[17]! : -1;
  return etherType === EXPETHER_ETHERTYPE || etherType < 0 ? decodeExpEtherFrame(bytes) : decodeStationFrame(bytes);
}
