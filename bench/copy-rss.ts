/**
 * Child process for the memory benchmark: one copy, then its peak resident set size as JSON.
 * Usage: node dist/bench/copy-rss.js <sizeBytes> <via>
 */
import { runCopy } from '../src/host/dc/command.js';
import { loadTopology } from '../src/topology/load.js';

const size = Number(process.argv[2] ?? 2 ** 30);
const via = (process.argv[3] ?? 'dc-buffer') as 'dc-buffer' | 'host';
const r = runCopy({ topology: loadTopology('paper-2012'), src: 'sda', srcOffset: 0, dst: 'sdb', dstOffset: 0, lengthBytes: size, via, seed: 1 });
process.stdout.write(JSON.stringify({ verified: r.verified, peakRssBytes: process.resourceUsage().maxRSS * 1024 }) + '\n');
