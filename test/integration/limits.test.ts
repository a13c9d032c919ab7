/**
 * What binds when nothing saturates, on the sweep a new user tried (issue 8, item 6): fast drives, the
 * max payload size swept. The limit must be the destination's read tags over a read round trip that
 * grows with the payload size, said with numbers that reproduce the measured bandwidth.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSweepParam } from '../../src/experiments/sweep-params.js';
import { sweep } from '../../src/experiments/sweep.js';
import { loadTopology } from '../../src/topology/load.js';

test('MPS sweep with fast drives: read-tag bound, the round trip grows with the payload size', async () => {
  const t = loadTopology('paper-2012');
  t.ssd.writeMBps = 2000;
  t.ssd.readMBps = 3000;
  const r = await sweep({ topology: t, params: [parseSweepParam(t, 'pcie.mpsBytes=128,512')], via: 'dc-buffer', sizeBytes: 8 << 20, seed: 1, metric: 'mbPerSec', threads: 1 });
  const rows = r.rows.map((row) => {
    const m = /^read-tag bound: sdb's read tags all in use (\d+)% of the time: ([\d.]+) tags x (\d+) B in flight over a ([\d.]+) us mean read round trip = (\d+) MB\/s/.exec(row.limit);
    assert.ok(m, `MPS ${row.params['pcie.mpsBytes']}: ${row.limit}`);
    return { mbPerSec: row.value, full: Number(m[1]), tags: Number(m[2]), bytes: Number(m[3]), rttUs: Number(m[4]), rate: Number(m[5]), limit: row.limit };
  });
  const [small, large] = rows;
  for (const x of rows) {
    assert.ok(x.full >= 90, `tags full ${x.full}% of the time`);
    assert.ok(x.tags > 7 && x.tags <= t.ssd.maxReadTags, `${x.tags} tags in flight of ${t.ssd.maxReadTags}`);
    assert.ok(x.bytes <= t.pcie.mrrsBytes && x.bytes > 0.95 * t.pcie.mrrsBytes, `${x.bytes} B per read (MRRS ${t.pcie.mrrsBytes})`);
    // Little's law: the stated tags x bytes / round trip is the bandwidth the move measured.
    assert.ok(Math.abs(x.tags * x.bytes / x.rttUs / x.rate - 1) < 0.02, `${x.tags} x ${x.bytes} / ${x.rttUs} = ${x.rate}`);
    assert.ok(Math.abs(x.rate / x.mbPerSec - 1) < 0.03, `stated ${x.rate} MB/s, measured ${x.mbPerSec}`);
    assert.match(x.limit, /more add no tags/);
  }
  // A larger payload: a longer round trip (store-and-forward of 512 B completions, and requests queued
  // behind the source's writes at the DC buffer's link), so less bandwidth through the same tags.
  assert.ok(large.rttUs > small.rttUs + 1, `round trip ${small.rttUs} -> ${large.rttUs} us`);
  assert.ok(large.mbPerSec < 0.85 * small.mbPerSec, `${small.mbPerSec} -> ${large.mbPerSec} MB/s`);
  assert.match(large.limit, /requests queued [\d.]+ us of it: [^)]*dcbuf0 link downstream/);
});
