import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { runJob, type Job, type JobResult } from './jobs.js';

/**
 * Runs independent jobs on worker threads (one per core by default). Each job is deterministic in its
 * own seed, so results are identical to running them one after another; they come back in job order.
 */
export async function runJobs(jobs: Job[], opts: { threads?: number; onDone?: (done: number, total: number) => void } = {}): Promise<JobResult[]> {
  const threads = Math.max(1, Math.min(opts.threads ?? availableParallelism(), jobs.length));
  const results: JobResult[] = new Array(jobs.length);
  let done = 0;
  if (threads === 1) {
    for (let i = 0; i < jobs.length; i++) {
      results[i] = runJob(jobs[i]);
      opts.onDone?.(++done, jobs.length);
      await new Promise((r) => setImmediate(r)); // let a progress bar repaint
    }
    return results;
  }
  let next = 0;
  const workers = Array.from({ length: threads }, () => new Worker(new URL('./worker.js', import.meta.url)));
  try {
    await Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve, reject) => {
            const feed = () => {
              if (next >= jobs.length) return resolve();
              const index = next++;
              w.postMessage({ index, job: jobs[index] });
            };
            w.on('message', (m: { index: number; result?: JobResult; error?: string }) => {
              if (m.error) return reject(new Error(`job ${m.index} failed: ${m.error}`));
              results[m.index] = m.result!;
              opts.onDone?.(++done, jobs.length);
              feed();
            });
            w.on('error', reject);
            feed();
          }),
      ),
    );
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  return results;
}
