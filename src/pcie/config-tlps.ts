import { CPL_STATUS, Tlp } from './tlp.js';
import type { ConfigSpace } from './config-space.js';

/** Reads a little-endian DW from a config write's payload. */
export function configWriteValue(tlp: Tlp): number {
  const d = tlp.data!;
  return (d[0] | (d[1] << 8) | (d[2] << 16) | (d[3] << 24)) >>> 0;
}

/** Serves a Type 0 configuration request from `cfg` and returns its completion. */
export function serveConfig(cfg: ConfigSpace, tlp: Tlp, completerId: number): Tlp {
  if (tlp.kind === 'CfgWr0') {
    cfg.write32(tlp.register, configWriteValue(tlp), tlp.firstBe);
    return Tlp.completion(tlp, completerId, CPL_STATUS.SC, null, 4, 0);
  }
  const v = cfg.read32(tlp.register);
  const data = new Uint8Array([v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24]);
  return Tlp.completion(tlp, completerId, CPL_STATUS.SC, data, 4, 0);
}

/** A copy of a Type 1 request converted to Type 0 (a bridge does this for its secondary bus). */
export function toType0(tlp: Tlp): Tlp {
  const kind = tlp.kind === 'CfgRd1' ? 'CfgRd0' : 'CfgWr0';
  const t = Tlp.config(kind, tlp.requesterId, tlp.tag, tlp.targetId, tlp.register, tlp.data);
  t.firstBe = tlp.firstBe;
  return t;
}

export function isConfig(tlp: Tlp): boolean {
  return tlp.kind === 'CfgRd0' || tlp.kind === 'CfgWr0' || tlp.kind === 'CfgRd1' || tlp.kind === 'CfgWr1';
}
