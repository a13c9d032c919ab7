/**
 * Authentication of live mode's datagrams (issue 20, item 1): a MAC keyed by the fabric key, and a
 * per-sender counter checked against a replay window. udp-transport.ts lays the fields out; this file
 * holds the keys, the MAC and the window.
 *
 * Why HMAC-SHA-256 truncated to 128 bits, not an AEAD (AES-GCM, ChaCha20-Poly1305): the threat is a
 * peer that injects or replays frames, not one that reads them (the drives' bytes are the user's
 * business, as on a real ExpEther LAN). An AEAD's security rests on never reusing a nonce under one
 * key; our counter is time-based so that it survives restarts (below), and a clock stepped backwards
 * could repeat one: GCM would then leak its authentication key, HMAC only accepts nothing older. HMAC
 * with SHA-NI also costs about what GCM does here (the bench quotes it). 128 bits: a forger's chance per
 * try is 2^-128, far past what a datagram rate can reach (the truncation RFC 2104 section 5 allows).
 *
 * Keys per direction: each sender MACs with its own key, HMAC(fabric key, "dconnect udp v4 sender " +
 * node name), so a datagram captured on its way to a box and reflected back to the host fails its MAC
 * (the host checks with the box's key), as WireGuard's two transport keys do.
 *
 * The counter (u64, per sending process): it starts at the wall clock in microseconds and counts up by
 * one per datagram. A restarted node so starts above everything it sent before (unless it sent more than
 * one datagram per microsecond on average since it started, far above a node's rate), with no state kept
 * across restarts; and the replay window counts datagrams, not time.
 * A receiver keeps, per sender node, the highest counter and a window of REPLAY_WINDOW below it, as
 * IPsec (RFC 4303, section 3.4.3) and WireGuard do: an older counter, or one seen already, is a replay.
 * A clock stepped back by more than a node's downtime makes its peer drop it until the clock has caught
 * up: restart the peer too (a new process starts with an empty window).
 *
 * Live code: it uses node:crypto and the wall clock.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** Bytes of the fabric key: 256 bits. */
export const FABRIC_KEY_BYTES = 32;
/** Bytes of the MAC a datagram ends with: HMAC-SHA-256 truncated to 128 bits. */
export const TAG_BYTES = 16;
/**
 * Counters a receiver still accepts below the highest it has seen (out-of-order datagrams within it are
 * fine): IPsec's default is 64, WireGuard's 8192; a node sends trains in order over one socket, so
 * reordering is rare and short.
 */
export const REPLAY_WINDOW = 1024;

/** A sender's key: derived from the fabric key and the sender's node name (see the file comment). */
export function senderKey(fabricKey: Uint8Array, node: string): Uint8Array {
  if (fabricKey.length !== FABRIC_KEY_BYTES) throw new RangeError(`a fabric key is ${FABRIC_KEY_BYTES} bytes, not ${fabricKey.length}`);
  return new Uint8Array(createHmac('sha256', fabricKey).update(`dconnect udp v4 sender ${node}`).digest());
}

/** The MAC of `data` under `key`: HMAC-SHA-256, its first TAG_BYTES bytes, written at `out[at..]`. */
export function writeTag(key: Uint8Array, data: Uint8Array, out: Uint8Array, at: number): void {
  const d = createHmac('sha256', key).update(data).digest();
  out.set(d.subarray(0, TAG_BYTES), at);
}

/** `tag` (TAG_BYTES) is the MAC of `data` under `key`; compared in constant time. */
export function tagMatches(key: Uint8Array, data: Uint8Array, tag: Uint8Array): boolean {
  const d = createHmac('sha256', key).update(data).digest();
  return tag.length === TAG_BYTES && timingSafeEqual(new Uint8Array(d.buffer, d.byteOffset, TAG_BYTES), tag);
}

/** Largest counter a Number holds exactly (2^53 - 1): the wall clock in microseconds stays below it until the year 2255. */
const MAX_COUNTER = Number.MAX_SAFE_INTEGER;

/** A sender's counter (see the file comment). */
export class SendCounter {
  private last = Math.floor((performance.timeOrigin + performance.now()) * 1000);
  next(): number {
    if (this.last >= MAX_COUNTER) throw new RangeError('the datagram counter reached 2^53');
    return ++this.last;
  }
}

/**
 * A receiver's replay window for one sender: `check` says whether a counter is new, `accept` records
 * it (only once the datagram's MAC is good: a forged counter must not move the window). Each slot holds
 * the last counter seen that maps to it; a counter within the window is seen iff its slot holds it.
 */
export class ReplayWindow {
  private highest = -1;
  private readonly slots = new Float64Array(REPLAY_WINDOW).fill(-1);

  check(counter: number): boolean {
    if (counter > this.highest) return true;
    if (counter <= this.highest - REPLAY_WINDOW) return false;
    return this.slots[counter % REPLAY_WINDOW] !== counter;
  }

  accept(counter: number): void {
    this.slots[counter % REPLAY_WINDOW] = counter;
    if (counter > this.highest) this.highest = counter;
  }
}

/** The fabric key from the text of a key file: 64 hex digits (and a newline); null when it is not one. */
export function parseFabricKey(text: string): Uint8Array | null {
  const t = text.trim();
  return /^[0-9a-f]{64}$/i.test(t) ? new Uint8Array(Buffer.from(t, 'hex')) : null;
}
