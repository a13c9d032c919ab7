/**
 * `--time-dilation auto`: how much slower than the hardware this machine runs the model. It times a
 * short per-TLP simulation of a direct and a conventional move on the same topology (in this process,
 * with no sockets) and takes the slower one's wall/simulated ratio, times a margin for what live mode
 * adds (sockets, files, two processes sharing the cores), rounded up to a whole number.
 */
import { runCopy } from '../runtime/copy.js';
import type { Topology } from '../topology/schema.js';

/** Live mode's extra work over the in-process simulation (UDP, files, scheduling), as a factor. */
export const AUTO_MARGIN = 3;
const PROBE_BYTES = 2 << 20;

export function autoDilation(t: Topology): { dilation: number; measuredRatio: number } {
  let worst = 0;
  for (const via of ['dc-buffer', 'host'] as const) {
    const start = performance.now();
    const r = runCopy({ topology: t, src: 'sda', srcOffset: 0, dst: 'sdb', dstOffset: 0, lengthBytes: PROBE_BYTES, via, seed: 1, fidelity: 'full', sha256: false });
    const wall = (performance.now() - start) / 1000;
    worst = Math.max(worst, wall / r.simulatedSeconds);
  }
  return { dilation: Math.max(1, Math.ceil(worst * AUTO_MARGIN)), measuredRatio: worst };
}
