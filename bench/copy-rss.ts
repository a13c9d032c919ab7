/**
 * Child process for the memory benchmark: one copy, then its peak resident set size as JSON.
 * Usage: node dist/bench/copy-rss.js <sizeBytes> <via> [fast|full]
 * The fidelity defaults to runCopy's own default (fast) when not given.
 */
import type { FidelityMode } from '../src/runtime/copy.js';
import { runCopy } from '../src/runtime/copy.js';
import { loadTopology } from '../src/topology/load.js';

const size = Number(process.argv[2] ?? 2 ** 30);
const via = (process.argv[3] ?? 'dc-buffer') as 'dc-buffer' | 'host';
const arg = process.argv[4];
if (arg !== undefined && arg !== 'fast' && arg !== 'full') throw new Error(`fidelity '${arg}' is not fast or full`);
const fidelity = arg as FidelityMode | undefined;
const r = runCopy({ topology: loadTopology('paper-2012'), src: 'sda', srcOffset: 0, dst: 'sdb', dstOffset: 0, lengthBytes: size, via, seed: 1, fidelity });
process.stdout.write(JSON.stringify({ verified: r.verified, fidelity: r.fidelity, peakRssBytes: process.resourceUsage().maxRSS * 1024 }) + '\n');
