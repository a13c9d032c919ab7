import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { runJob, type Job, type JobResult } from './jobs.js';
import { abortedError, checkAborted } from '../runtime/engine/runner.js';

/** A finished job, for progress reports. */
export interface JobDone {
  done: number;
  total: number;
  index: number;
  job: Job;
  result: JobResult;
}

export interface PoolOptions {
  threads?: number;
  /** A job is handed to a thread (which is idle then): lets the caller time it with its own clock. */
  onStart?: (index: number) => void;
  onDone?: (d: JobDone) => void;
  /**
   * Cancels the run: the workers stop at once and the promise rejects with DconnectError 'ABORTED'.
   * With a signal the jobs always run on worker threads (one at least), so an abort lands whatever a
   * job is doing.
   */
  signal?: AbortSignal;
}

/**
 * Runs independent jobs on worker threads (one per core by default). Each job is deterministic in its
 * own seed, so results are identical to running them one after another; they come back in job order.
 */
export async function runJobs(jobs: Job[], opts: PoolOptions = {}): Promise<JobResult[]> {
  checkAborted(opts.signal);
  const threads = Math.max(1, Math.min(opts.threads ?? availableParallelism(), jobs.length));
  const results: JobResult[] = new Array(jobs.length);
  let done = 0;
  const finish = (index: number, result: JobResult) => {
    results[index] = result;
    opts.onDone?.({ done: ++done, total: jobs.length, index, job: jobs[index], result });
  };
  if (threads === 1 && !opts.signal) {
    for (let i = 0; i < jobs.length; i++) {
      opts.onStart?.(i);
      finish(i, runJob(jobs[i]));
      await new Promise((r) => setImmediate(r)); // let a progress bar repaint
    }
    return results;
  }
  let next = 0;
  const workers = Array.from({ length: threads }, () => new Worker(new URL('./worker.js', import.meta.url)));
  let onAbort: (() => void) | null = null;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(abortedError());
    opts.signal?.addEventListener('abort', onAbort, { once: true });
  });
  try {
    await Promise.race([aborted, Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve, reject) => {
            const feed = () => {
              if (next >= jobs.length) return resolve();
              const index = next++;
              opts.onStart?.(index);
              w.postMessage({ index, job: jobs[index] });
            };
            w.on('message', (m: { index: number; result?: JobResult; error?: string }) => {
              if (m.error) return reject(new Error(`job ${m.index} failed: ${m.error}`));
              finish(m.index, m.result!);
              feed();
            });
            w.on('error', reject);
            feed();
          }),
      ),
    )]);
  } finally {
    if (onAbort) opts.signal?.removeEventListener('abort', onAbort);
    await Promise.all(workers.map((w) => w.terminate()));
  }
  return results;
}
