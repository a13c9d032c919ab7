/**
 * Running one queued job on the host's session (job-queue.ts calls `runJobOnSession` as its `start`):
 * its capture (live-capture.ts), the range or file copy in model events (live-job.ts, file-job.ts), its
 * durable record kept in step (state, restart marker, plan, result), the watchdog waiting on the
 * boxes it uses, and one end: done, cancelled, or failed naming where it stands so `--resume`
 * continues it. A session that ends under it fails it the same way.
 */
import type { DconnectError } from '../core/errors.js';
import { granularityInfo } from '../runtime/moves.js';
import type { JobRecord } from './control-api.js';
import { runFileJob, type FileJobResult } from './file-job.js';
import type { JobQueue, RunningJob } from './job-queue.js';
import type { JobStore } from './job-store.js';
import { JobCapture, type CaptureRoute } from './live-capture.js';
import { runJob, type JobResult } from './live-job.js';
import type { SessionManager } from './host-session.js';
import type { Pace, RealtimeScheduler } from './realtime-scheduler.js';

type RunResultLag = ReturnType<RealtimeScheduler['lagSummary']>;

export interface JobRunnerContext {
  jobs: JobStore;
  sessions: SessionManager;
  queue: () => JobQueue;
  /** The fabric's pacing, for results. */
  pace: Pace;
  dilation: number;
  burstBytes: number;
  /** Where the job's links are recorded (the host's crossing cables, boxes' own). */
  captureRoute(links: string[]): CaptureRoute;
  /** Sets or clears the host transport's tap (a capture's host part). */
  setTap(tap: ((cable: string, frame: Uint8Array) => void) | null): void;
  boxSocket(box: string): string;
  log(line: string): void;
}

/** Where a failed job stands, for its error message: the restart marker of a range, a file job's reservations. */
export function jobMarker(rec: JobRecord): string {
  if (!rec.files) return `bytes [0, ${rec.doneBytes}) of the range are copied and flushed`;
  if (!rec.files.plan) return 'nothing is reserved on the destination by this job';
  return `the destination files are reserved and empty${rec.doneBytes >= rec.lengthBytes ? '; their data is moved and flushed, not yet committed' : ''}`;
}

/** Jobs left running or queued by a host that died are failed (their marker stands): resume continues them. */
export function failOrphanedJobs(jobs: JobStore): void {
  for (const rec of jobs.list()) {
    if (rec.state === 'running' || rec.state === 'verifying' || rec.state === 'queued') {
      jobs.update(rec.id, { state: 'failed', error: { code: 'HOST_RESTARTED', message: `the host node stopped during job ${rec.id}; ${jobMarker(rec)}`, hint: `dconnect copy --resume ${rec.id} --live finishes it` } });
    }
  }
}

/** Runs the queue's job `job` on the current session (starting one if needed); `done` once its record says how it ended. */
export function runJobOnSession(c: JobRunnerContext, job: RunningJob, done: () => void): void {
  const id = job.id;
  const rec = c.jobs.require(id);
  job.bytes = rec.doneBytes;
  let ended = false;
  let releaseWait = () => {};
  let offSession = () => {};
  // A capture lasts as long as this run of the job (a resumed job captures again, into the same file).
  let capture: JobCapture | null = null;
  const captureReady: Promise<void> = rec.capture
    ? JobCapture.start({ path: rec.capture.path, route: c.captureRoute(rec.capture.links), setTap: c.setTap, boxSocket: c.boxSocket }).then(
        (cap) => void (capture = cap),
        (e: Error) => c.log(`job ${id}: no capture: ${e.message}`),
      )
    : Promise.resolve();

  const finish = (patch: Partial<JobRecord>) => {
    if (ended) return;
    ended = true;
    releaseWait();
    offSession();
    const record = (p: Partial<JobRecord>) => {
      const after = c.jobs.update(id, p);
      c.log(`job ${id}: ${after.state}${after.error ? `: ${after.error.message}` : ''}`);
      done();
    };
    const cap = capture as JobCapture | null;
    if (!cap) return record(patch);
    // The parts are stopped and merged before the job says it is done, so the file is whole then.
    const res = patch.result ?? {};
    cap.stop().then(
      (captured) => record({ ...patch, result: { ...res, captured } }),
      (e: Error) => record({ ...patch, result: { ...res, captureError: e.message } }),
    );
  };
  const failWith = (e: Error) => {
    const cur = c.jobs.require(id);
    const err = e as DconnectError;
    const marker = jobMarker(cur);
    // A file job refused by its file systems (no such path, a name taken, no space) fails the same way again: no resume.
    const final = cur.files !== undefined && (err.code?.startsWith('FS_') || err.code === 'BAD_OPTION');
    finish({ state: 'failed', error: { code: err.code ?? 'INTERNAL', message: e.message.includes('copied and flushed') || e.message.includes(marker) ? e.message : `${e.message}; ${marker}`, hint: final || err.hint?.includes('--resume') ? err.hint : `${err.hint ? `${err.hint}; then ` : ''}dconnect copy --resume ${id} --live finishes it` } });
  };
  const resultOf = <R extends JobResult | FileJobResult>(res: R, lag: RunResultLag): R => ({ ...res, pace: c.pace, dilation: c.dilation, granularity: granularityInfo(c.burstBytes), lag });
  const hooks = {
    progress: (n: number) => void (job.bytes = n),
    segmentDone: (n: number) => {
      job.bytes = n;
      c.jobs.update(id, { doneBytes: n });
    },
    verified: (n: number) => void (job.verifiedBytes = n),
    cancelled: () => c.queue().cancelRequested(id),
  };

  c.jobs.update(id, { state: 'running', error: undefined });
  c.log(`job ${id}: running from byte ${rec.doneBytes} of ${rec.lengthBytes}`);
  captureReady
    .then(() => {
      const s = c.sessions.ensure();
      offSession = s.onEnd(failWith);
      return s.booted.then((host) => ({ s, host }));
    })
    .then(({ s, host }) => {
      host.fabric.scheduler.inject(() => {
        if (ended) return;
        try {
          const lag = () => s.scheduler.lagSummary();
          const started = rec.files
            ? runFileJob(
                host,
                s.pool!,
                rec,
                {
                  ...hooks,
                  planned: (plan) => {
                    rec.files = { ...rec.files!, plan };
                    rec.lengthBytes = plan.dataBytes;
                    c.jobs.update(id, { files: rec.files, lengthBytes: plan.dataBytes });
                    c.log(`job ${id}: reserved ${plan.files.length} files (${plan.dataBytes} bytes of data in ${plan.runs.length} runs) on ${rec.dst}`);
                  },
                  verifying: () => void c.jobs.update(id, { state: 'verifying' }),
                },
                (res) =>
                  res === 'cancelled'
                    ? finish({ state: 'cancelled' })
                    : finish({ state: res.verified !== false ? 'done' : 'failed', doneBytes: rec.lengthBytes, result: resultOf(res, lag()), ...(res.verified !== false ? {} : { error: { code: 'VERIFY_FAILED', message: `copied files differ from their sources: ${res.checks.map((k) => `${k.dstPath}: ${k.problem}`).join('; ')}` } }) }),
                failWith,
              )
            : runJob(
                host,
                s.pool!,
                rec,
                {
                  ...hooks,
                  verifying: () => {
                    c.jobs.update(id, { state: 'verifying', doneBytes: rec.lengthBytes });
                    // A capture holds the move, not the verification's reads: it ends here (finish merges it).
                    void (capture as JobCapture | null)?.stop().catch(() => {});
                  },
                },
                (res) =>
                  res === 'cancelled'
                    ? finish({ state: 'cancelled' })
                    : finish({ state: res.verified !== false ? 'done' : 'failed', doneBytes: rec.lengthBytes, result: resultOf(res, lag()), ...(res.verified !== false ? {} : { error: { code: 'VERIFY_FAILED', message: `the destination range differs from the source (sha256 ${res.dstSha256} != ${res.srcSha256})` } }) }),
                failWith,
              );
          // Not if it already ended (cancelled before its first segment).
          if (!ended) releaseWait = s.watchdog.waitOn(started.boxes);
        } catch (e) {
          failWith(e as Error);
        }
      });
    })
    .catch(failWith);
}
