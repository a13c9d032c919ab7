/**
 * `npm run bench -- [--json] [--quick] [--size SIZE] [--runs N] [--skip-repro]`: how fast the
 * simulator runs on this machine. Never part of the test suite; timings are reported, not asserted.
 *
 * - kernel: the scheduler alone on the hold model (bench/kernel.ts).
 * - model: the paper's move (preset paper-2012, host link x1, full TLP granularity), direct and
 *   conventional: simulated seconds per wall second, after a warm-up, median of the runs.
 * - repro: the whole evaluation (`dconnect repro`, 10 runs per Fig. 5 bar, Fig. 6 from 1 to 8), wall time.
 * - memory: peak RSS of a child process doing one copy of SIZE.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseSize } from '../src/core/units.js';
import { reproduce } from '../src/experiments/repro.js';
import { runCopy } from '../src/host/dc/command.js';
import { loadTopology } from '../src/topology/load.js';
import { runKernelBench } from './kernel.js';

const args = process.argv.slice(2);
const flag = (n: string) => args.includes(n);
const opt = (n: string, d: string) => (args.includes(n) ? args[args.indexOf(n) + 1] : d);
const quick = flag('--quick');
const sizeBytes = parseSize(opt('--size', quick ? '64MiB' : '1GiB'));
const runs = Number(opt('--runs', quick ? '1' : '3'));
const log = (s: string) => {
  if (!flag('--json')) process.stdout.write(s + '\n');
  else process.stderr.write(s + '\n');
};

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const wallNow = () => Number(process.hrtime.bigint()) / 1e9;

function model(via: 'dc-buffer' | 'host') {
  const topology = loadTopology('paper-2012');
  topology.host.link.lanes = 1;
  const once = (bytes: number) => {
    const t0 = wallNow();
    const r = runCopy({ topology, src: 'sda', srcOffset: 0, dst: 'sdb', dstOffset: 0, lengthBytes: bytes, via, seed: 1 });
    const wall = wallNow() - t0;
    return { wall, simulated: r.simulatedSeconds, events: r.events, mbPerSec: r.mbPerSec };
  };
  once(Math.min(sizeBytes, 16 << 20)); // warm-up: JIT
  const rs = Array.from({ length: runs }, () => once(sizeBytes));
  const wall = median(rs.map((r) => r.wall));
  const r = rs[0];
  return { sizeBytes, wallSeconds: wall, simulatedSeconds: r.simulated, speedup: r.simulated / wall, eventsPerSec: r.events / wall, events: r.events, mbPerSec: r.mbPerSec };
}

// First, while this process is small: Linux keeps a forked child's peak RSS across exec, so a child
// started from a large parent would report the parent's size.
log(`memory: peak RSS of one ${sizeBytes} B direct copy in a child process ...`);
const child = fileURLToPath(new URL('./copy-rss.js', import.meta.url));
const mem = JSON.parse(execFileSync(process.execPath, [child, String(sizeBytes), 'dc-buffer'], { encoding: 'utf8' })) as { peakRssBytes: number };
log(`  ${(mem.peakRssBytes / 2 ** 20).toFixed(0)} MiB`);


log(`kernel: hold model, 1000 processes, 10M events ...`);
const kernel = runKernelBench();
log(`  ${(kernel.eventsPerSec / 1e6).toFixed(2)} M events/s (median of ${kernel.runs.length})`);

log(`model: ${sizeBytes} B move, paper-2012 at x1, ${runs} run(s) after a warm-up ...`);
const direct = model('dc-buffer');
log(`  direct:       ${direct.wallSeconds.toFixed(2)} s wall for ${direct.simulatedSeconds.toFixed(3)} s simulated: ${direct.speedup.toFixed(2)}x real time, ${(direct.eventsPerSec / 1e6).toFixed(2)} M events/s`);
const conventional = model('host');
log(`  conventional: ${conventional.wallSeconds.toFixed(2)} s wall for ${conventional.simulatedSeconds.toFixed(3)} s simulated: ${conventional.speedup.toFixed(2)}x real time, ${(conventional.eventsPerSec / 1e6).toFixed(2)} M events/s`);

let repro: { wallSeconds: number; sizeBytes: number; runs: number; boundsOk: boolean } | null = null;
if (!flag('--skip-repro')) {
  const reproSize = quick ? 16 << 20 : 2 ** 30;
  const reproRuns = quick ? 2 : 10;
  log(`repro: Fig. 5 (${reproRuns} runs per bar) and Fig. 6, ${reproSize} B per move, all cores ...`);
  const t0 = wallNow();
  const r = await reproduce({ topology: loadTopology('paper-2012'), runs: reproRuns, sizeBytes: reproSize });
  repro = { wallSeconds: wallNow() - t0, sizeBytes: reproSize, runs: reproRuns, boundsOk: r.bounds.every((b) => b.ok) };
  log(`  ${repro.wallSeconds.toFixed(1)} s wall; fidelity bounds ${repro.boundsOk ? 'all met' : 'NOT all met'}`);
}

if (flag('--json')) {
  process.stdout.write(
    JSON.stringify({
      kernel: { eventsPerSec: kernel.eventsPerSec, runs: kernel.runs },
      model: { sizeBytes, direct, conventional },
      repro: repro ?? { wallSeconds: null },
      memory: { peakRssBytes: mem.peakRssBytes, sizeBytes },
    }) + '\n',
  );
}
