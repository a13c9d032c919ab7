/**
 * `--time-dilation auto`: how much slower than the hardware this machine runs the model. It times a
 * short per-TLP simulation of a direct and a conventional move on the same topology (in this process,
 * with no sockets) and takes the slower one's wall/simulated ratio, times a margin for what live mode
 * adds (sockets, files, two processes sharing the cores), rounded up to a whole number.
 */
import { runCopy } from '../runtime/copy.js';
import type { Topology } from '../topology/schema.js';

/**
 * Live mode's extra work over the in-process simulation (datagrams, files, two processes sharing the
 * cores), as a factor. Measured with bench/live.ts on paper-2012 x1 (16 MiB): the conventional copy,
 * whose data crosses the sockets twice, falls behind first. Dilation 102-249 (margins ~3-10x) left
 * the direct/conventional ratio 10-47% off the simulator's; dilation 400 (~30x) within 2%.
 */
export const AUTO_MARGIN = 30;
const PROBE_BYTES = 2 << 20;

export function autoDilation(t: Topology): { dilation: number; measuredRatio: number } {
  const ratio = (via: 'dc-buffer' | 'host'): number => {
    const start = performance.now();
    const r = runCopy({ topology: t, src: 'sda', srcOffset: 0, dst: 'sdb', dstOffset: 0, lengthBytes: PROBE_BYTES, via, seed: 1, fidelity: 'full', sha256: false });
    return (performance.now() - start) / 1000 / r.simulatedSeconds;
  };
  // The first runs mostly time the JIT compiling the model (measured: 259 then 34, 38, 50, 32): one
  // warm-up of each mode is thrown away, then each is timed twice and the slower kept.
  ratio('dc-buffer');
  ratio('host');
  let worst = 0;
  for (const via of ['dc-buffer', 'host', 'dc-buffer', 'host'] as const) worst = Math.max(worst, ratio(via));
  return { dilation: Math.max(1, Math.ceil(worst * AUTO_MARGIN)), measuredRatio: worst };
}
