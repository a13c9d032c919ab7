/**
 * Event-kernel benchmark: the classic hold model. A fixed population of processes each reschedules
 * itself after an exponentially distributed delay, so the queue stays at a constant size and every
 * event is one dequeue plus one enqueue at a random future time: the scheduler's steady-state cost.
 *
 * runNs3HoldBench runs the same model through ns-3 (bench/ns3-hold.cc, compiled here with g++ against
 * Debian's libns3-dev) for the issue's target: at least 2x ns-3's fastest scheduler.
 *
 * Run: `node dist/bench/kernel.js` (after `npx tsc -p tsconfig.json`).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { RngStream } from '../src/core/rng.js';
import { VirtualScheduler } from '../src/core/scheduler.js';

export interface KernelBenchOptions {
  /** Concurrent processes (the queue size). */
  processes?: number;
  /** Events per measured run. */
  events?: number;
  /** Mean hold time, ps. */
  meanPs?: number;
  /** Measured runs (the median is reported); one unmeasured warm-up run comes first. */
  runs?: number;
}

export interface KernelBenchResult {
  /** Median over the measured runs. */
  eventsPerSec: number;
  /** Every measured run, in order. */
  runs: number[];
  /** Simulated time at the end of the last run, ps: the same on every machine (a determinism check). */
  endPs: number;
}

/**
 * Every delay of a run, drawn before it is timed (index k: the k-th event scheduled). The kernel is
 * measured, not the generator: RngStream is JavaScript (~15 ns a draw) and ns-3's side uses a C++
 * port (~3 ns), so drawing inside the timed loop would charge the JS generator to the JS kernel.
 */
function holdDelays(events: number, meanPs: number): Float64Array {
  const rng = new RngStream(12345);
  const d = new Float64Array(events);
  for (let k = 0; k < events; k++) d[k] = Math.floor(rng.exponential(meanPs));
  return d;
}

/** One hold-model run; returns [events per wall second, final simulated time]. */
function holdRun(processes: number, events: number, delays: Float64Array): [number, number] {
  const s = new VirtualScheduler();
  let scheduled = 0;
  const hold = (): void => {
    if (scheduled < events) s.schedule(delays[scheduled++], hold);
  };
  for (let i = 0; i < processes && scheduled < events; i++) s.schedule(delays[scheduled++], hold);
  const t0 = performance.now();
  s.run();
  const seconds = (performance.now() - t0) / 1000;
  if (s.eventsExecuted !== events) throw new Error(`hold model ran ${s.eventsExecuted} events, expected ${events}`);
  return [events / seconds, s.now()];
}

export function runKernelBench(opts: KernelBenchOptions = {}): KernelBenchResult {
  const processes = opts.processes ?? 1000;
  const events = opts.events ?? 10_000_000;
  const meanPs = opts.meanPs ?? 1e6;
  const runs = opts.runs ?? 3;
  const delays = holdDelays(events, meanPs); // one table for every run: no 80 MB allocation between them
  holdRun(processes, events, delays); // warm-up: lets the JIT settle before anything is measured
  const rates: number[] = [];
  let endPs = 0;
  for (let i = 0; i < runs; i++) {
    const [rate, end] = holdRun(processes, events, delays);
    rates.push(rate);
    endPs = end;
  }
  const sorted = [...rates].sort((a, b) => a - b);
  return { eventsPerSec: sorted[Math.floor(sorted.length / 2)], runs: rates, endPs };
}

/** One line of bench/ns3-hold.cc's output. */
export interface Ns3HoldResult {
  /** ns-3 version, major.minor. */
  ns3: string;
  /** TypeId, e.g. ns3::PriorityQueueScheduler. */
  scheduler: string;
  /**
   * simulator: Simulator::Schedule of a self-rescheduling function (an EventImpl and a call per event),
   * the like-for-like comparison with VirtualScheduler. scheduler: Insert/RemoveNext on the Scheduler
   * object alone, no event objects or calls: ns-3's floor, not a kernel anyone runs a model on.
   */
  mode: 'simulator' | 'scheduler';
  /** Median over the measured runs. */
  eventsPerSec: number;
  runs: number[];
  /** Simulated end time, ps: equal to ours when both ran the same draws. */
  endPs: number;
}

export type Ns3HoldBench =
  | { available: true; compile: string; results: Ns3HoldResult[] }
  | { available: false; reason: string };

/** ns-3's headers and library directory, or null when libns3-dev is not installed. */
function findNs3(): { include: string; lib: string } | null {
  const variable = (name: string, fallback: string): string => {
    try {
      return execFileSync('pkg-config', [`--variable=${name}`, 'ns3-core'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() || fallback;
    } catch {
      return fallback; // no pkg-config, or no ns3-core.pc: try the Debian paths
    }
  };
  // Not `pkg-config --cflags`: Debian's ns3-core.pc has a stray `-I/usr\;` in it.
  const include = variable('includedir', '/usr/include');
  return existsSync(join(include, 'ns3', 'simulator.h')) ? { include, lib: variable('libdir', '/usr/lib/x86_64-linux-gnu') } : null;
}

/**
 * The hold model through ns-3, for MapScheduler, HeapScheduler, CalendarScheduler and
 * PriorityQueueScheduler (ListScheduler is O(processes) per insert: ~0.5 M events/s, minutes per
 * scheduler). Same options and draws as runKernelBench. Takes about a minute at the defaults.
 */
export function runNs3HoldBench(opts: KernelBenchOptions = {}): Ns3HoldBench {
  const ns3 = findNs3();
  if (!ns3) return { available: false, reason: 'ns-3 not installed (apt-get install libns3-dev)' };
  try {
    execFileSync('g++', ['--version'], { stdio: 'ignore' });
  } catch {
    return { available: false, reason: 'g++ not found (apt-get install g++)' };
  }
  const source = fileURLToPath(new URL('../../bench/ns3-hold.cc', import.meta.url));
  const dir = mkdtempSync(join(tmpdir(), 'dconnect-ns3-'));
  try {
    const exe = join(dir, 'ns3-hold');
    const flags = ['-O3', '-std=c++20', `-I${ns3.include}`];
    try {
      execFileSync('g++', [...flags, source, '-o', exe, `-L${ns3.lib}`, `-Wl,-rpath,${ns3.lib}`, '-lns3-core'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (e) {
      const stderr = String((e as { stderr?: unknown }).stderr ?? e);
      return { available: false, reason: `g++ could not build bench/ns3-hold.cc: ${stderr.split('\n').slice(0, 3).join(' ')}` };
    }
    const args = [
      `--processes=${opts.processes ?? 1000}`,
      `--events=${opts.events ?? 10_000_000}`,
      `--mean-ps=${opts.meanPs ?? 1e6}`,
      `--runs=${opts.runs ?? 3}`,
    ];
    const out = execFileSync(exe, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    const results = out.trim().split('\n').map((line) => JSON.parse(line) as Ns3HoldResult);
    return { available: true, compile: `g++ ${flags.join(' ')} -lns3-core`, results };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The fastest ns-3 result in a mode, or null. */
export function fastestNs3(results: Ns3HoldResult[], mode: Ns3HoldResult['mode']): Ns3HoldResult | null {
  return results.filter((r) => r.mode === mode).reduce<Ns3HoldResult | null>((a, r) => (a && a.eventsPerSec >= r.eventsPerSec ? a : r), null);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const r = runKernelBench();
  const m = (x: number) => (x / 1e6).toFixed(2);
  console.log(`hold model, 1000 processes, 10M events: ${m(r.eventsPerSec)} M events/s (runs: ${r.runs.map(m).join(', ')}; end ${r.endPs} ps)`);
  const ns3 = runNs3HoldBench();
  if (!ns3.available) console.log(`ns-3: ${ns3.reason}`);
  else
    for (const x of ns3.results)
      console.log(`ns-3 ${x.ns3} ${x.scheduler} (${x.mode}): ${m(x.eventsPerSec)} M events/s (runs: ${x.runs.map(m).join(', ')}; end ${x.endPs} ps); ours / it = ${(r.eventsPerSec / x.eventsPerSec).toFixed(2)}`);
}
