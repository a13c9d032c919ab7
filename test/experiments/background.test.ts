/**
 * Background runs for library users (experiments/background.ts): progress as an async iterator that
 * ends with the run, and an AbortSignal that stops it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DconnectError } from '../../src/core/errors.js';
import { streamMovesInBackground } from '../../src/experiments/background.js';
import { loadTopology } from '../../src/topology/load.js';

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
