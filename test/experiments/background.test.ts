/**
 * Background runs for library users (experiments/background.ts): progress as an async iterator that
 * ends with the run, and an AbortSignal that stops it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DconnectError } from '../../src/core/errors.js';
import { streamMovesInBackground } from '../../src/experiments/background.js';
import { loadTopology } from '../../src/topology/load.js';
import { runMoves } from '../../src/runtime/moves.js';
import { runCopy } from '../../src/runtime/copy.js';
import { reproduce } from '../../src/experiments/repro.js';
import { sweep } from '../../src/experiments/sweep.js';
import { parseSweepParam } from '../../src/experiments/sweep-params.js';
import { METRICS } from '../../src/experiments/metrics.js';

const MiB = 1 << 20;
const request = (lengthBytes: number) => ({ topology: loadTopology('paper-2012'), pairs: [{ src: 'sda', srcOffset: 0, dst: 'sdb', dstOffset: 0 }], lengthBytes, via: 'dc-buffer' as const, seed: 1 });

test('streamMovesInBackground: progress reports in order, ending with the run, then the verified result', async () => {
  const run = streamMovesInBackground(request(64 * MiB));
  const seen: number[] = [];
  for await (const p of run.progress) {
    assert.equal(p.totalBytes, 64 * MiB);
    seen.push(p.doneBytes);
  }
  const r = await run.result;
  assert.ok(r.moves[0].verified);
  assert.ok(seen.length > 0, 'at least one progress report');
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i] >= seen[i - 1], 'progress never goes back');
  assert.ok(seen[seen.length - 1] <= 64 * MiB);
});

test('streamMovesInBackground: an abort ends the progress and rejects the result with ABORTED', async () => {
  const ac = new AbortController();
  const run = streamMovesInBackground({ ...request(1024 * MiB), fidelity: 'full' }, { signal: ac.signal });
  for await (const p of run.progress) {
    if (p.doneBytes > 0) ac.abort();
  }
  await assert.rejects(run.result, (e: unknown) => e instanceof DconnectError && e.code === 'ABORTED');
});

// Every run takes an AbortSignal (issue 22 item 5): on this thread a callback may abort it, on workers anything may.
const isAborted = (e: unknown) => e instanceof DconnectError && e.code === 'ABORTED';

test('runMoves on this thread: an abort from its progress callback stops it within a slice; an aborted signal stops it before it starts', () => {
  const ac = new AbortController();
  let reports = 0;
  assert.throws(
    () =>
      runMoves({
        ...request(1024 * MiB),
        fidelity: 'full',
        signal: ac.signal,
        onProgress: (done) => {
          reports++;
          if (done > 0) ac.abort();
        },
      }),
    isAborted,
  );
  assert.ok(reports >= 1 && reports <= 3, `stopped at the slice after the abort (${reports} progress reports)`);
  assert.throws(() => runCopy({ ...request(1 * MiB), src: 'sda', srcOffset: 0, dst: 'sdb', dstOffset: 0, signal: ac.signal }), isAborted);
});

test('reproduce and sweep: an abort stops their worker threads and rejects with ABORTED', async () => {
  const ac = new AbortController();
  const topology = loadTopology('paper-2012');
  const run = reproduce({ topology, runs: 1, sizeBytes: 256 * MiB, fidelity: 'full', threads: 1, signal: ac.signal, onStart: () => ac.abort() });
  await assert.rejects(run, isAborted);
  const p = parseSweepParam(topology, 'host.lanes=1,8');
  await assert.rejects(sweep({ topology, params: [p], via: 'dc-buffer', sizeBytes: 8 * MiB, seed: 1, metric: METRICS[0], signal: ac.signal }), isAborted, 'an aborted signal: nothing runs');
});
