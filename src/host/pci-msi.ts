import type { RootComplex } from '../devices/root-complex.js';
import { MSI_ADDRESS_BASE } from '../devices/root-complex.js';
import { CAP_ID } from '../pcie/config-space.js';
import { call, type Seq } from './coroutine.js';

/** Capabilities a list walk visits at most (48 fit in the 192 bytes after the header): a bounded loop. */
const MAX_CAPS = 48;

/**
 * Finds a function's MSI capability over the fabric, programs it (the local APIC window's address and
 * `vector` as the data) and enables it; `handler` runs for each message. What every driver does first.
 */
export function* enableMsi(rc: RootComplex, deviceId: number, vector: number, handler: () => void, what: string): Seq<void> {
  const rd = (reg: number) => call<number>((k) => rc.configRead(deviceId, reg, k));
  const wr = (reg: number, v: number) => call<void>((k) => rc.configWrite(deviceId, reg, v, k));
  let ptr = (yield* rd(0x34)) & 0xfc;
  for (let guard = 0; ptr !== 0 && guard < MAX_CAPS; guard++) {
    const hdr = yield* rd(ptr);
    if ((hdr & 0xff) === CAP_ID.MSI) break;
    ptr = (hdr >>> 8) & 0xfc;
  }
  if (ptr === 0) throw new Error(`${what} ${deviceId.toString(16)} has no MSI capability`);
  yield* wr(ptr + 4, MSI_ADDRESS_BASE);
  yield* wr(ptr + 8, 0);
  yield* wr(ptr + 12, vector);
  const ctl = yield* rd(ptr);
  yield* wr(ptr, ctl | (1 << 16));
  rc.onMsi(vector, handler);
}
