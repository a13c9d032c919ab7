/**
 * The host node's job queue: jobs run one at a time in submission order (each already keeps `depth`
 * commands in flight), cancels are asked of the running job and take effect at its next segment
 * boundary or verification chunk. What running a job means is the caller's (`start`, job-runner.ts);
 * the queue only orders, bounds and tracks. No clock, no processes: unit-tested alone.
 */
import { liveError } from './state-dir.js';

/**
 * Jobs waiting at once (the running one aside). A bound, so a client that submits in a loop gets an
 * error instead of growing the host's memory and state directory without end; far more than a person
 * queues.
 */
export const MAX_QUEUED_JOBS = 256;

/** The job that runs now, with its live progress (the durable record has only the flushed prefix). */
export interface RunningJob {
  readonly id: string;
  /** Bytes written to the destination so far (not yet all flushed). */
  bytes: number;
  /** While verifying: bytes of the range read back and compared. */
  verifiedBytes: number;
}

export class JobQueue {
  private readonly waiting: string[] = [];
  private running: RunningJob | null = null;
  private readonly cancels = new Set<string>();

  /**
   * `start` runs a job (setting its progress from its record) and calls `done` when it has ended and
   * its record says how (the next job starts then); `bound`: MAX_QUEUED_JOBS unless told.
   */
  constructor(private readonly o: { start: (job: RunningJob, done: () => void) => void; bound?: number }) {}

  /** Queues `id` (a job recorded as queued), and starts it if nothing runs. CONFLICT when the queue is full. */
  submit(id: string): void {
    this.assertRoom();
    this.waiting.push(id);
    this.pump();
  }

  /** Throws CONFLICT when the queue is full (asked before a job is recorded as queued, so a refused one leaves no record). */
  assertRoom(): void {
    const bound = this.o.bound ?? MAX_QUEUED_JOBS;
    if (this.waiting.length >= bound) throw liveError('CONFLICT', `${bound} jobs are queued already: the host takes no more until some run`, 'wait for queued jobs to finish (dconnect status lists them), or cancel some');
  }

  /** Asks `id` to stop: a queued job leaves the queue ('dequeued'), the running one is asked at its next boundary ('asked'); else 'not-active'. */
  cancel(id: string): 'dequeued' | 'asked' | 'not-active' {
    const at = this.waiting.indexOf(id);
    if (at >= 0) {
      this.waiting.splice(at, 1);
      return 'dequeued';
    }
    if (this.running?.id === id) {
      this.cancels.add(id);
      return 'asked';
    }
    return 'not-active';
  }

  /** Whether the running job `id` was asked to stop (its runner asks at each boundary). */
  cancelRequested(id: string): boolean {
    return this.cancels.has(id);
  }

  /** The running job, or null. */
  current(): RunningJob | null {
    return this.running;
  }

  /** Jobs waiting, in order. */
  queued(): readonly string[] {
    return this.waiting;
  }

  private pump(): void {
    if (this.running || this.waiting.length === 0) return;
    const id = this.waiting.shift()!;
    const job: RunningJob = { id, bytes: 0, verifiedBytes: 0 };
    this.running = job;
    let ended = false;
    this.o.start(job, () => {
      if (ended) return;
      ended = true;
      this.cancels.delete(id);
      if (this.running === job) this.running = null;
      this.pump();
    });
  }
}
