/**
 * `node dist/bench/coverage.js [--seeds N] [--size SIZE]`: how often the statistical fast path's
 * 99.7% interval covers the per-TLP run, over many seeds (the equivalence suite in `npm test` covers
 * a matrix of configurations with one seed each; this is the replication behind its claim).
 * For each configuration and seed: one full and one fast move; the fast result is covered when
 * |fast - full| / fast <= its relativeError99. Prints the coverage, the worst |error| / half-width and
 * the mean detailed chunks. Takes ~1.5 s per full 40 MiB move (30 seeds: ~3 minutes).
 */
import { parseSize } from '../src/core/units.js';
import { runCopy, type CopyRequest } from '../src/runtime/copy.js';
import { loadTopology } from '../src/topology/load.js';

const args = process.argv.slice(2);
const opt = (n: string, d: string) => (args.includes(n) ? args[args.indexOf(n) + 1] : d);
const seeds = Number(opt('--seeds', '30'));
const lengthBytes = parseSize(opt('--size', '40MiB'));
if (!Number.isInteger(seeds) || seeds < 1) throw new Error('--seeds must be a positive integer');

const configs: Array<{ name: string; via: CopyRequest['via']; lanes: 1 | 8; depth?: number }> = [
  { name: 'direct x1', via: 'dc-buffer', lanes: 1 },
  { name: 'conventional x1', via: 'host', lanes: 1 },
  { name: 'direct x8 depth 8', via: 'dc-buffer', lanes: 8, depth: 8 },
  { name: 'conventional x8', via: 'host', lanes: 8 },
];

let trials = 0;
let covered = 0;
let worst = 0;
let detailed = 0;
for (const c of configs) {
  for (let seed = 1; seed <= seeds; seed++) {
    const move = (fidelity: 'fast' | 'full') => {
      const topology = loadTopology('paper-2012');
      topology.host.link.lanes = c.lanes;
      return runCopy({ topology, src: 'sda', srcOffset: 0, dst: 'sdb', dstOffset: 0, lengthBytes, via: c.via, seed, depth: c.depth, fidelity, sha256: false });
    };
    const full = move('full');
    const fast = move('fast');
    if (fast.fidelity.exact) continue;
    const err = Math.abs(fast.mbPerSec - full.mbPerSec) / fast.mbPerSec;
    const ratio = err / fast.fidelity.relativeError99;
    trials++;
    detailed += fast.fidelity.detailedChunks;
    worst = Math.max(worst, ratio);
    if (ratio <= 1) covered++;
    else process.stdout.write(`NOT covered: ${c.name} seed ${seed}: error ${(err * 100).toFixed(4)}%, interval ±${(fast.fidelity.relativeError99 * 100).toFixed(4)}%\n`);
  }
  process.stderr.write(`${c.name}: ${seeds} seeds done\n`);
}
process.stdout.write(
  `statistical intervals covering the full run: ${covered}/${trials} (nominal 99.7%); worst |error| / half-width ${worst.toFixed(3)}; ` +
    `mean detailed chunks ${(detailed / Math.max(1, trials)).toFixed(1)} of ${Math.ceil(lengthBytes / (128 * 1024))}\n`,
);
