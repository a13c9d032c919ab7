/**
 * Event-kernel benchmark: the classic hold model. A fixed population of processes each reschedules
 * itself after an exponentially distributed delay, so the queue stays at a constant size and every
 * event is one dequeue plus one enqueue at a random future time: the scheduler's steady-state cost.
 *
 * Run: `node dist/bench/kernel.js` (after `npx tsc -p tsconfig.json`).
 */
import { pathToFileURL } from 'node:url';
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

/** One hold-model run; returns [events per wall second, final simulated time]. */
function holdRun(processes: number, events: number, meanPs: number): [number, number] {
  const s = new VirtualScheduler();
  const rng = new RngStream(12345);
  let scheduled = 0;
  const hold = (): void => {
    if (scheduled < events) {
      scheduled++;
      s.schedule(Math.floor(rng.exponential(meanPs)), hold);
    }
  };
  for (let i = 0; i < processes && scheduled < events; i++) {
    scheduled++;
    s.schedule(Math.floor(rng.exponential(meanPs)), hold);
  }
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
  holdRun(processes, events, meanPs); // warm-up: lets the JIT settle before anything is measured
  const rates: number[] = [];
  let endPs = 0;
  for (let i = 0; i < runs; i++) {
    const [rate, end] = holdRun(processes, events, meanPs);
    rates.push(rate);
    endPs = end;
  }
  const sorted = [...rates].sort((a, b) => a - b);
  return { eventsPerSec: sorted[Math.floor(sorted.length / 2)], runs: rates, endPs };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const r = runKernelBench();
  const m = (x: number) => (x / 1e6).toFixed(2);
  console.log(`hold model, 1000 processes, 10M events: ${m(r.eventsPerSec)} M events/s (runs: ${r.runs.map(m).join(', ')}; end ${r.endPs} ps)`);
}
