/**
 * repro --only files (issue 23 item 5), at small sizes: the jobs and their order, the table's shape,
 * where the direct copy pays off (ahead at x1 for large files, not for 4 KiB ones, bound there by the
 * metadata's round trips), the report's section, shards carrying --max-file-size, and burst
 * granularity against per-TLP on a small file copy.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DconnectError } from '../../src/core/errors.js';
import { parseFigures } from '../../src/cli/experiments.js';
import { assembleFiles, FILE_SIZES, filesChart, filesJobs, filesSizes, type FilesPlan } from '../../src/experiments/files.js';
import { runJob } from '../../src/experiments/jobs.js';
import { reproJobs, type ReproResult } from '../../src/experiments/repro.js';
import { reproMarkdown, reproTables } from '../../src/experiments/report.js';
import { jobsOf, reproParameters } from '../../src/experiments/shard-plans.js';
import { runFileCopy } from '../../src/runtime/files.js';
import { fileTreeImages, TREE_PATH, TREE_TIME_SEC } from '../../src/runtime/file-trees.js';
import { BURST_RELATIVE_ERROR_BOUND } from '../../src/runtime/moves.js';
import { loadTopology } from '../../src/topology/load.js';
import { granularityInfo } from '../../src/runtime/moves.js';
import { summarizeFidelity } from '../../src/experiments/fidelity.js';

const KiB = 1024;
const MiB = 2 ** 20;
const t = loadTopology('paper-2012');

test('repro --only files: sizes up to --max-file-size (64 MiB by default, 1 GiB at most), x8 then x1, direct then conventional, full fidelity; shards rebuild the same jobs', () => {
  assert.deepEqual(parseFigures('files,fig5'), ['fig5', 'files']);
  assert.ok(reproJobs({ topology: t, runs: 1, sizeBytes: MiB }).every((j) => j.files === undefined), 'not in the default set');
  assert.deepEqual(filesSizes(), [4 * KiB, 64 * KiB, MiB, 16 * MiB, 64 * MiB]);
  assert.deepEqual(filesSizes(2 ** 30), FILE_SIZES);
  assert.throws(() => filesSizes(2 ** 31), (e: unknown) => e instanceof DconnectError && /outside 4KiB..1GiB/.test(e.message));
  const jobs = reproJobs({ topology: t, runs: 1, sizeBytes: 2 ** 30, only: ['files'], maxFileBytes: MiB });
  assert.equal(jobs.length, 12);
  assert.deepEqual(
    jobs.map((j) => `${j.via} x${j.topology.host.link.lanes} ${j.files!.files}x${j.files!.fileBytes}`).slice(0, 6),
    ['dc-buffer x8 8x4096', 'dc-buffer x8 8x65536', 'dc-buffer x8 8x1048576', 'host x8 8x4096', 'host x8 8x65536', 'host x8 8x1048576'],
  );
  assert.ok(jobs.every((j) => j.fidelity === 'full'));
  const plan = { topology: t, runs: 1, sizeBytes: MiB, only: ['files' as const], maxFileBytes: MiB };
  assert.deepEqual(jobsOf('repro', JSON.parse(JSON.stringify(reproParameters(plan)))), reproJobs(plan));
  assert.equal('maxFileBytes' in reproParameters({ ...plan, maxFileBytes: undefined }), false, 'absent unless given: older shard files keep their parameters');
});

test('the files figure at 4 KiB..1 MiB: direct beats conventional at x1 from 64 KiB, not at 4 KiB (metadata round trips); the table, chart and report', () => {
  const plan: FilesPlan = { topology: t, maxFileBytes: MiB };
  const results = filesJobs(plan).map((j) => runJob(j));
  const f = assembleFiles(plan, results);
  assert.equal(f.points.length, 12);
  const at = (lanes: number, mode: string, size: number) => f.points.find((p) => p.hostLanes === lanes && p.mode === mode && p.fileBytes === size)!;
  // Large files at x1: the conventional copy is held by the host link, the direct one is not.
  assert.ok(at(1, 'direct', MiB).mbPerSec > 1.5 * at(1, 'conventional', MiB).mbPerSec, `${at(1, 'direct', MiB).mbPerSec} against ${at(1, 'conventional', MiB).mbPerSec}`);
  // At x8 the two are alike; at 4 KiB the metadata's round trips bind both.
  assert.ok(Math.abs(at(8, 'direct', MiB).mbPerSec / at(8, 'conventional', MiB).mbPerSec - 1) < 0.05);
  for (const mode of ['direct', 'conventional']) assert.equal(at(1, mode, 4 * KiB).limit.name, 'metadata round trips');
  assert.ok(at(1, 'direct', 4 * KiB).mbPerSec / at(1, 'conventional', 4 * KiB).mbPerSec < 1.2);
  assert.equal(f.crossover.find((c) => c.hostLanes === 1)!.fileBytes, 64 * KiB);
  assert.equal(f.crossover.find((c) => c.hostLanes === 8)!.fileBytes, null);
  // The metadata's share of the direct copy's host-link bytes falls as files grow; it is the same bytes in both modes.
  const shares = f.sizes.map((s) => at(1, 'direct', s).metadataShare);
  assert.ok(shares[0] > 0.9 && shares[2] < shares[0], shares.join(' '));
  assert.equal(at(1, 'direct', MiB).metadataBytes, at(1, 'conventional', MiB).metadataBytes);
  assert.ok(f.points.every((p) => p.limit.explanation.length > 0 && p.hostLinkBytes > p.metadataBytes));

  const r: ReproResult = { preset: t.name, sizeBytes: 2 ** 30, runs: 1, overrides: [], fidelity: summarizeFidelity(results.map((x) => x.fidelity)), granularity: granularityInfo(0), files: f, bounds: [] };
  const table = reproTables(r);
  assert.match(table, /x1: crossover at 64 KiB/);
  assert.equal(table.split('\n').filter((l) => /^\s+(4 KiB|64 KiB|1 MiB)\s/.test(l)).length, 12, table);
  const md = reproMarkdown(r, { wallSeconds: 1 });
  assert.match(md, /## Files \(beyond the paper\)/);
  assert.match(md, /!\[Files\]\(files\.png\)/);
  assert.match(md, /At x1 the crossover is at 64 KiB/);
  assert.match(md, /metadata round trips/);
  assert.equal(md.split('\n').filter((l) => /^\| (4 KiB|64 KiB|1 MiB) \|/.test(l)).length, 12);
  assert.match(md, /trees of files from 4 KiB to 1 MiB/);
  const spec = JSON.stringify(filesChart(f));
  assert.match(spec, /metadata share of/);
});

test('a file copy at burst granularity: the same metadata and runs, simulated time within the stated bound of per-TLP (its method says so)', () => {
  const copy = (granularity: 'tlp' | 'burst') =>
    runFileCopy({ topology: t, src: 'sda', srcPath: TREE_PATH, dst: 'sdb', dstPath: TREE_PATH, via: 'dc-buffer', seed: 1, recursive: true, force: false, nowSec: TREE_TIME_SEC, granularity, images: fileTreeImages({ fileBytes: 3 * MiB + 5, files: 2, fsBytes: 2 ** 30, seed: 1 }, 'sda', 'sdb') });
  const tlp = copy('tlp');
  const burst = copy('burst');
  assert.ok(tlp.verified && burst.verified);
  assert.deepEqual(burst.metadata, tlp.metadata);
  assert.equal(burst.runs, tlp.runs);
  assert.ok(burst.events < tlp.events, `${burst.events} events at burst, ${tlp.events} per TLP`);
  const err = Math.abs(burst.simulatedSeconds / tlp.simulatedSeconds - 1);
  assert.ok(err <= BURST_RELATIVE_ERROR_BOUND, `burst ${burst.simulatedSeconds} s against per-TLP ${tlp.simulatedSeconds} s: ${(err * 100).toFixed(2)}%`);
  assert.equal(burst.granularity.mode, 'burst');
  assert.equal(burst.fidelity.exact, false);
  assert.match(burst.fidelity.method, /burst granularity/);
  assert.equal(tlp.fidelity.exact, true);
});
