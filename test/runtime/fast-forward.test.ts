import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FastForward } from '../../src/runtime/fast/fast-forward.js';

/**
 * The controller on a synthetic pipeline whose state repeats every 3 chunks after a warm-up: it must
 * jump whole periods, and the extrapolated end, chunk times and counters must equal the series it
 * would have observed chunk by chunk.
 */
function periodic(chunks: number, period: number, warm: number) {
  const steps = [700, 500, 900];
  const times: number[] = [];
  let t = 0;
  for (let k = 0; k < chunks; k++) {
    t += k < warm ? 2000 - k : steps[k % period];
    times.push(t);
  }
  return times;
}

test('exact: a state that recurs twice at equal spacing is jumped by whole periods with zero error', () => {
  const chunks = 200;
  const truth = periodic(chunks, 3, 10);
  let k = 0;
  let bytes = 0;
  const ff = new FastForward({
    startPs: 0,
    chunks,
    fullChunks: chunks,
    deterministic: () => true,
    digest: () => (k < 10 ? `warm${k}` : `phase${k % 3}`),
    counters: () => ({ link: { bytes, maxQueue: 7 } }),
  });
  // Drive it as a depth-1 operator would: chunk `label` written, the next chunk to read is label + 1.
  let simulated = 0;
  let offset = 0;
  let skipAt = -1;
  for (let label = 0; label < chunks; label++) {
    k = label;
    bytes = (label + 1) * 100;
    const skip = ff.chunkWritten(label, label + 1, truth[label] - offset);
    simulated++;
    if (skip > 0) {
      skipAt = label;
      assert.equal(ff.skipped().from, label + 1);
      assert.equal(skip % 3, 0, 'whole periods');
      // The relabelled pipeline then runs as the real one would have `skip` chunks later, shifted back.
      offset = truth[label + skip] - truth[label];
      label += skip;
    }
  }
  const out = ff.finish(truth[chunks - 1] - offset);
  assert.ok(skipAt > 0, 'the period was found');
  assert.equal(out.fidelity.exact, true);
  assert.equal(out.fidelity.relativeError99, 0);
  assert.equal(out.endPs, truth[chunks - 1]);
  assert.ok(out.fidelity.detailedChunks < chunks / 2, `${out.fidelity.detailedChunks} detailed`);
  assert.ok(simulated < chunks / 2);
  // Counters: the period's increment times the periods jumped; maxima are not extrapolated.
  assert.equal(out.counterAdds.link.bytes, ff.skipped().count * 100);
  assert.equal(out.counterAdds.link.maxQueue, undefined);
});

test('statistical: random chunk times are jumped at the mean, and the interval covers the chunk-by-chunk end', () => {
  let covered = 0;
  const trials = 40;
  for (let s = 1; s <= trials; s++) {
    let x = s * 2654435761;
    const rnd = () => ((x = (Math.imul(x ^ (x >>> 15), 2246822519) + 0x6d2b79f5) >>> 0) / 2 ** 32);
    const chunks = 4000;
    const truth: number[] = [];
    let t = 0;
    for (let k = 0; k < chunks; k++) truth.push((t += 1_000_000 * (0.95 + 0.1 * rnd())));
    const ff = new FastForward({ startPs: 0, chunks, fullChunks: chunks, deterministic: () => false, digest: null, counters: () => ({}) });
    for (let label = 0; label < chunks; label++) {
      const now = truth[label];
      const skip = ff.chunkWritten(label, label + 1, now);
      if (skip === 0) continue;
      // After the jump the tail is a fresh realization (the skipped chunks' draws never happen).
      let tail = 0;
      for (let j = label + skip + 1; j < chunks; j++) tail += 1_000_000 * (0.95 + 0.1 * rnd());
      const out = ff.finish(now + tail);
      assert.equal(out.fidelity.exact, false);
      assert.ok(out.fidelity.relativeError99 > 0 && out.fidelity.relativeError99 <= 0.005, `interval ${out.fidelity.relativeError99}`);
      assert.ok(out.fidelity.detailedChunks < chunks / 2);
      const T = truth[chunks - 1];
      if (Math.abs(out.endPs - T) / T <= out.fidelity.relativeError99) covered++;
      break;
    }
  }
  assert.ok(covered >= trials - 1, `${covered} of ${trials} intervals covered the truth`);
});

test('a jump reports progress while its chunks move functionally: a long fast copy is never silent', async () => {
  const { runCopy } = await import('../../src/runtime/copy.js');
  const { loadTopology } = await import('../../src/topology/load.js');
  const seen: number[] = [];
  const total = 1 << 30;
  const r = runCopy({ topology: loadTopology('paper-2012'), src: 'sda', srcOffset: 0, dst: 'sdb', dstOffset: 0, lengthBytes: total, via: 'dc-buffer', seed: 1, fidelity: 'fast', sha256: false, onProgress: (d: number) => seen.push(d) });
  assert.equal(r.verified, true);
  assert.ok(r.fidelity.detailedChunks < r.fidelity.totalChunks, 'chunks were jumped');
  assert.ok(seen.every((d, i) => i === 0 || d >= seen[i - 1]), 'progress never goes back');
  assert.ok(seen.filter((d) => d > total / 4 && d < total).length >= 8, `progress inside the jump, not only at its ends: ${seen.length} reports`);
  assert.ok(seen.length > 0 && seen.at(-1)! <= total);
});
