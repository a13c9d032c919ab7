/**
 * The host's job queue alone (no processes, no fabric): one job at a time in submission order, the
 * next starting when the running one says it is done, cancels dequeuing or asking, and its bound.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { DconnectError } from '../../src/core/errors.js';
import { JobQueue, MAX_QUEUED_JOBS, type RunningJob } from '../../src/live/job-queue.js';

function setup(bound?: number) {
  const started: { job: RunningJob; done: () => void }[] = [];
  const q = new JobQueue({ start: (job, done) => started.push({ job, done }), bound });
  return { q, started };
}

describe('JobQueue: one job at a time, bounded', () => {
  it('runs jobs one at a time in submission order', () => {
    const { q, started } = setup();
    q.submit('j1');
    q.submit('j2');
    q.submit('j3');
    assert.deepEqual(started.map((s) => s.job.id), ['j1'], 'the second waits for the first');
    assert.equal(q.current()?.id, 'j1');
    assert.deepEqual(q.queued(), ['j2', 'j3']);
    started[0]!.done();
    started[0]!.done(); // a second done changes nothing
    assert.deepEqual(started.map((s) => s.job.id), ['j1', 'j2']);
    started[1]!.done();
    started[2]!.done();
    assert.equal(q.current(), null);
    assert.deepEqual(q.queued(), []);
  });

  it('keeps the running job\'s live progress for the API', () => {
    const { q, started } = setup();
    q.submit('j1');
    started[0]!.job.bytes = 4096;
    started[0]!.job.verifiedBytes = 512;
    assert.deepEqual(q.current(), { id: 'j1', bytes: 4096, verifiedBytes: 512 });
  });

  it('dequeues a queued job, and asks the running one to stop at its next boundary', () => {
    const { q, started } = setup();
    q.submit('j1');
    q.submit('j2');
    assert.equal(q.cancel('j2'), 'dequeued');
    assert.deepEqual(q.queued(), []);
    assert.equal(q.cancelRequested('j1'), false);
    assert.equal(q.cancel('j1'), 'asked');
    assert.equal(q.cancelRequested('j1'), true);
    assert.equal(q.cancel('j9'), 'not-active');
    started[0]!.done();
    assert.equal(q.cancelRequested('j1'), false, 'the request ends with the run (a resumed job starts clean)');
    assert.equal(started.length, 1, 'the dequeued job never starts');
  });

  it('refuses a job past its bound with CONFLICT, before anything is queued', () => {
    const { q, started } = setup(2);
    q.submit('j1'); // runs: not counted
    q.submit('j2');
    q.submit('j3');
    assert.throws(() => q.assertRoom(), (e) => e instanceof DconnectError && e.code === 'CONFLICT' && /2 jobs are queued/.test(e.message));
    assert.throws(() => q.submit('j4'), (e) => e instanceof DconnectError && e.code === 'CONFLICT');
    assert.deepEqual(q.queued(), ['j2', 'j3']);
    started[0]!.done();
    q.submit('j4');
    assert.deepEqual(q.queued(), ['j3', 'j4']);
    assert.ok(MAX_QUEUED_JOBS >= 16, 'the default bound is far more than a person queues');
  });

  it('starts the next job even when a job ends from inside its own start', () => {
    const order: string[] = [];
    const q: JobQueue = new JobQueue({
      start: (job, done) => {
        order.push(job.id);
        done(); // refused at once (e.g. its record is gone)
      },
    });
    q.submit('j1');
    q.submit('j2');
    assert.deepEqual(order, ['j1', 'j2']);
    assert.equal(q.current(), null);
  });
});
