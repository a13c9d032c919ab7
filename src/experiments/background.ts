/**
 * Moves run off the caller's thread, for library users (src/index.ts): `runMovesInBackground` runs
 * `runMoves` in a worker thread, reports progress as it goes and can be cancelled with an AbortSignal.
 * The simulation itself is synchronous (model code never yields), so a run on the caller's thread
 * could only be stopped between runs; on a worker, an abort terminates the thread at once, whatever
 * the run is doing, and the promise rejects with DconnectError 'ABORTED'. One worker per run: the
 * request is copied to it (structured clone), so it carries data only: no `connect`, no callbacks
 * besides the two below.
 */
import { Worker } from 'node:worker_threads';
import { DconnectError, type ErrorCode } from '../core/errors.js';
import type { MovesRequest, MovesResult } from '../runtime/moves.js';
import { abortedError } from '../runtime/engine/runner.js';

/** What a background run takes: a MovesRequest without functions. */
export type BackgroundMovesRequest = Omit<MovesRequest, 'onProgress' | 'onVerify' | 'connect' | 'onStart' | 'signal'>;

export interface BackgroundOptions {
  /** Cancels the run: the worker stops at once and the promise rejects with DconnectError 'ABORTED'. */
  signal?: AbortSignal;
  /** Bytes written to the destinations so far, of all moves (at most every PROGRESS_STEP_BYTES). */
  onProgress?: (doneBytes: number, totalBytes: number) => void;
}

/** Messages from moves-worker.ts. */
export type WorkerMessage =
  | { kind: 'progress'; doneBytes: number; totalBytes: number }
  | { kind: 'result'; result: MovesResult }
  | { kind: 'error'; code: ErrorCode | null; message: string; hint?: string };

export function runMovesInBackground(req: BackgroundMovesRequest, o: BackgroundOptions = {}): Promise<MovesResult> {
  if (o.signal?.aborted) return Promise.reject(abortedError());
  return new Promise<MovesResult>((resolve, reject) => {
    const worker = new Worker(new URL('./moves-worker.js', import.meta.url), { workerData: req });
    let settled = false;
    const settle = (fn: () => void) => {
      if (settled) return;
      settled = true;
      o.signal?.removeEventListener('abort', onAbort);
      fn();
    };
    const onAbort = () => settle(() => void worker.terminate().then(() => reject(abortedError()), () => reject(abortedError())));
    o.signal?.addEventListener('abort', onAbort, { once: true });
    worker.on('message', (m: WorkerMessage) => {
      if (m.kind === 'progress') {
        if (!settled) o.onProgress?.(m.doneBytes, m.totalBytes);
      } else if (m.kind === 'result') settle(() => resolve(m.result));
      else settle(() => reject(m.code ? new DconnectError(m.code, m.message, m.hint) : new Error(m.message)));
    });
    worker.on('error', (e) => settle(() => reject(e)));
    worker.on('exit', (code) => settle(() => reject(new Error(`the run's worker thread exited (code ${code}) before it answered`))));
  });
}

/** Progress of a background run: bytes written to the destinations so far, of all moves. */
export interface MovesProgress {
  doneBytes: number;
  totalBytes: number;
}

/**
 * `runMovesInBackground` with its progress as an async iterator: `for await (const p of run.progress)`
 * sees each report, and ends when the run does (`run.result` then holds the result or the error).
 * A consumer slower than the reports sees the latest one (the queue keeps one report: bounded).
 */
export function streamMovesInBackground(req: BackgroundMovesRequest, o: Pick<BackgroundOptions, 'signal'> = {}): { progress: AsyncIterableIterator<MovesProgress>; result: Promise<MovesResult> } {
  let latest: MovesProgress | null = null;
  let finished = false;
  let wake: (() => void) | null = null;
  const poke = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  const result = runMovesInBackground(req, {
    ...o,
    onProgress: (doneBytes, totalBytes) => {
      latest = { doneBytes, totalBytes };
      poke();
    },
  });
  const end = () => {
    finished = true;
    poke();
  };
  result.then(end, end);
  async function* reports(): AsyncGenerator<MovesProgress> {
    for (;;) {
      if (latest === null && !finished) await new Promise<void>((r) => (wake = r));
      if (latest !== null) {
        const p: MovesProgress = latest;
        latest = null;
        yield p;
      } else if (finished) return;
    }
  }
  return { progress: reports(), result };
}
