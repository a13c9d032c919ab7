import { DconnectError } from '../../core/errors.js';
import type { HostDevice, Relay } from './host-device.js';

/** Which relays a move may use: every relay (`nearest`), or one sort (`dc-buffer`, `cmb`). */
export type RelayChoice = { nearest: true } | { via: string };

/**
 * Switch traversals of a relayed move's data, the way Linux's `pci_p2pdma_distance` ranks providers:
 * source to relay plus relay to destination, each 0 when the relay is part of that device (an NVMe
 * CMB: the controller moves the data itself), 1 within a box (the box's switch), 3 between boxes
 * (box switch, shared switch, box switch).
 */
export function relayDistance(src: HostDevice, relay: Relay, dst: HostDevice): number {
  const leg = (d: HostDevice) => (relay.device === d.name ? 0 : d.box === relay.box ? 1 : 3);
  return leg(src) + leg(dst);
}

/**
 * The relay for a direct move from `src` to `dst` among `relays`: the fewest switch traversals
 * (`relayDistance`), then one in the destination (its data crosses the fabric as posted writes, with
 * no read round trips), then the least loaded (`load`: moves each already relays in this run), then
 * the order the drivers found them. None to choose from is an error naming what there is.
 */
export function planRelay(relays: readonly Relay[], src: HostDevice, dst: HostDevice, choice: RelayChoice, load: ReadonlyMap<string, number> = new Map()): Relay {
  const pool = relays.filter((r) => ('via' in choice ? r.via === choice.via : true));
  if (pool.length === 0) {
    const have = relays.map((r) => r.name).join(', ') || 'none';
    if ('via' in choice && choice.via === 'dc-buffer') throw new DconnectError('BAD_TOPOLOGY', 'the fabric has no DC buffer', `add a slot of kind 'dc-buffer' to a box, or use --via host (relays found: ${have})`);
    if ('via' in choice && choice.via === 'cmb') throw new DconnectError('BAD_TOPOLOGY', "no SSD of the host's has a Controller Memory Buffer", `give the SSDs one (--set ssd.cmbSizeBytes=32MiB), or use --via dc-buffer (relays found: ${have})`);
    throw new DconnectError('BAD_TOPOLOGY', 'the fabric has no relay (no DC buffer, no SSD with a CMB)', "add a slot of kind 'dc-buffer' to a box, or use --via host");
  }
  const rank = (r: Relay): [number, number, number] => [relayDistance(src, r, dst), r.device === dst.name ? 0 : 1, load.get(r.name) ?? 0];
  let best = pool[0];
  let bestRank = rank(best);
  for (const r of pool.slice(1)) {
    const k = rank(r);
    if (k[0] < bestRank[0] || (k[0] === bestRank[0] && (k[1] < bestRank[1] || (k[1] === bestRank[1] && k[2] < bestRank[2])))) {
      best = r;
      bestRank = k;
    }
  }
  return best;
}
