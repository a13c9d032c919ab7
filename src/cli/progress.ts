import cliProgress from 'cli-progress';
import type { JobDone } from '../experiments/pool.js';
import { tagOf } from '../experiments/fidelity.js';

/**
 * A progress bar on stderr when it is a terminal. Elsewhere (CI, pipes) silent, or with `lines`, a
 * plain line at every tenth of the total, so a long single run (a `--fidelity full` copy) shows in logs.
 */
export function progressBar(label: string, total: number, unit: string, opts: { lines?: boolean } = {}): { update(v: number): void; stop(): void } {
  if (!process.stderr.isTTY) {
    if (!opts.lines || total <= 0) return { update() {}, stop() {} };
    let shown = 0;
    return {
      update: (v) => {
        const tenth = Math.min(10, Math.floor((v / total) * 10));
        if (tenth <= shown) return;
        shown = tenth;
        process.stderr.write(`${label}: ${tenth * 10}% (${v}/${total} ${unit})\n`);
      },
      stop() {},
    };
  }
  const bar = new cliProgress.SingleBar(
    { format: `${label} [{bar}] {percentage}% | {value}/{total} ${unit} | {duration_formatted}`, stream: process.stderr, hideCursor: true, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0);
  return { update: (v) => bar.update(v), stop: () => bar.stop() };
}

export interface JobProgress {
  onStart(index: number): void;
  onDone(d: JobDone): void;
  stop(): void;
}

/**
 * Progress of a run of jobs: the bar on a terminal; elsewhere (CI logs, pipes) one plain line per
 * finished job on stderr, so a long run is not silent for minutes, e.g.
 * `repro: [12/48] fig5 direct x1 seed 3: 249.87 MB/s (fast, exact) 1.9 s`. `value` says the result.
 */
export function jobProgress(label: string, total: number, unit: string, value: (d: JobDone) => string): JobProgress {
  const bar = progressBar(label, total, unit);
  const lines = !process.stderr.isTTY;
  const started = new Map<number, bigint>();
  return {
    onStart: (index) => started.set(index, process.hrtime.bigint()),
    onDone: (d) => {
      bar.update(d.done);
      if (!lines) return;
      const wall = Number(process.hrtime.bigint() - (started.get(d.index) ?? process.hrtime.bigint())) / 1e9;
      process.stderr.write(`${label}: [${d.done}/${d.total}] ${d.job.label ?? `job ${d.index + 1}`}: ${value(d)} (${tagOf(d.result.fidelity)}) ${wall.toFixed(1)} s\n`);
    },
    stop: () => bar.stop(),
  };
}
