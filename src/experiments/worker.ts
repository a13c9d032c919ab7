import { parentPort } from 'node:worker_threads';
import { runJob, type Job } from './jobs.js';

/** Worker thread: runs jobs it is sent, one at a time, and posts each result with its index. */
parentPort!.on('message', (msg: { index: number; job: Job }) => {
  try {
    parentPort!.postMessage({ index: msg.index, result: runJob(msg.job) });
  } catch (e) {
    parentPort!.postMessage({ index: msg.index, error: (e as Error).stack ?? String(e) });
  }
});
