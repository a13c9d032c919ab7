import cliProgress from 'cli-progress';
import type { JobDone } from '../experiments/pool.js';
import { tagOf } from '../experiments/fidelity.js';
import type { Output } from './io.js';

/** Off a terminal, a plain progress line is printed at least this often while values come in, ms. */
export const LINE_EVERY_MS = 5000;

/** A bar is drawn on the process's stderr when it is a terminal; any other output gets plain lines. */
const drawsBar = (err: Output): boolean => err === process.stderr && process.stderr.isTTY === true;

/**
 * A progress bar on stderr when it is a terminal. Elsewhere (CI, pipes, another `err` such as a
 * test's buffer) silent, or with `lines`, a plain line on `err` at every tenth of the total or every
 * LINE_EVERY_MS, whichever comes first, and a last one at the end, so a long single run (a
 * `--fidelity full` copy, a live job) shows steadily in logs.
 */
export function progressBar(label: string, total: number, unit: string, opts: { lines?: boolean; err?: Output } = {}): { update(v: number): void; stop(): void } {
  const err = opts.err ?? process.stderr;
  if (!drawsBar(err)) {
    if (!opts.lines || total <= 0) return { update() {}, stop() {} };
    return plainLines(label, total, unit, err);
  }
  const bar = new cliProgress.SingleBar(
    { format: `${label} [{bar}] {percentage}% | {value}/{total} ${unit} | {duration_formatted}`, stream: process.stderr, hideCursor: true, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0);
  return { update: (v) => bar.update(v), stop: () => bar.stop() };
}

/** The off-a-terminal progress: `copy: 30% (3/10 bytes)` lines, by tenths and by time; the last at stop. */
function plainLines(label: string, total: number, unit: string, err: Output): { update(v: number): void; stop(): void } {
  let tenthShown = 0;
  let lastShown = 0;
  let last = 0;
  let shownAt = Date.now();
  let stopped = false;
  const show = (v: number) => {
    err.write(`${label}: ${Math.floor((100 * v) / total)}% (${v}/${total} ${unit})\n`);
    lastShown = v;
    shownAt = Date.now();
  };
  return {
    update: (v) => {
      last = v;
      const tenth = Math.min(10, Math.floor((v / total) * 10));
      if (tenth > tenthShown) {
        tenthShown = tenth;
        show(v);
      } else if (v > lastShown && Date.now() - shownAt >= LINE_EVERY_MS) show(v);
    },
    stop: () => {
      // A run that jumps (the fast fidelity) or ends between tenths still says where it ended.
      if (!stopped && last > lastShown) show(last);
      stopped = true;
    },
  };
}

export interface JobProgress {
  onStart(index: number): void;
  onDone(d: JobDone): void;
  stop(): void;
}

/**
 * Progress of a run of jobs: the bar on a terminal; elsewhere (CI logs, pipes) one plain line per
 * finished job on stderr (`err`), so a long run is not silent for minutes, e.g.
 * `repro: [12/48] fig5 direct x1 seed 3: 249.87 MB/s (fast, exact) 1.9 s`. `value` says the result.
 */
export function jobProgress(label: string, total: number, unit: string, value: (d: JobDone) => string, err: Output = process.stderr): JobProgress {
  const bar = progressBar(label, total, unit, { err });
  const lines = !drawsBar(err);
  const started = new Map<number, bigint>();
  return {
    onStart: (index) => started.set(index, process.hrtime.bigint()),
    onDone: (d) => {
      bar.update(d.done);
      if (!lines) return;
      const wall = Number(process.hrtime.bigint() - (started.get(d.index) ?? process.hrtime.bigint())) / 1e9;
      err.write(`${label}: [${d.done}/${d.total}] ${d.job.label ?? `job ${d.index + 1}`}: ${value(d)} (${tagOf(d.result.fidelity)}) ${wall.toFixed(1)} s\n`);
    },
    stop: () => bar.stop(),
  };
}
