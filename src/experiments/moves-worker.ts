/** Worker thread of background.ts: runs one runMoves request and posts progress, then its result or error. */
import { parentPort, workerData } from 'node:worker_threads';
import { DconnectError } from '../core/errors.js';
import { runMoves, type MovesRequest } from '../runtime/moves.js';
import type { WorkerMessage } from './background.js';

/** Progress is posted at most once per this many bytes moved (a message per chunk would cost more than the chunk). */
const PROGRESS_STEP_BYTES = 4 << 20;

const post = (m: WorkerMessage) => parentPort!.postMessage(m);
let last = -Infinity;
try {
  const req = workerData as MovesRequest;
  const result = runMoves({
    ...req,
    onProgress: (doneBytes, totalBytes) => {
      if (doneBytes - last < PROGRESS_STEP_BYTES && doneBytes < totalBytes) return;
      last = doneBytes;
      post({ kind: 'progress', doneBytes, totalBytes });
    },
  });
  post({ kind: 'result', result });
} catch (e) {
  post(e instanceof DconnectError ? { kind: 'error', code: e.code, message: e.message, hint: e.hint } : { kind: 'error', code: null, message: (e as Error).stack ?? String(e) });
}
