import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DconnectError } from '../../src/core/errors.js';
import { parseSweepParam, sweepablePaths, withParam } from '../../src/experiments/sweep-params.js';
import { sweep, sweepChart, sweepTable } from '../../src/experiments/sweep.js';
import { loadTopology } from '../../src/topology/load.js';

const t = loadTopology('paper-2012');
const fails = (spec: string, re: RegExp) =>
  assert.throws(
    () => parseSweepParam(t, spec),
    (e: unknown) => e instanceof DconnectError && e.code === 'BAD_PARAM' && re.test(e.message + ' ' + (e.hint ?? '')),
    spec,
  );

test('parameter paths: aliases, dotted paths, lists, ranges and sizes', () => {
  assert.deepEqual(parseSweepParam(t, 'host.lanes=1,2,4,8'), { name: 'host.lanes', path: ['host', 'link', 'lanes'], values: [1, 2, 4, 8] });
  assert.deepEqual(parseSweepParam(t, 'depth=1..4').values, [1, 2, 3, 4]);
  assert.deepEqual(parseSweepParam(t, 'ssd.writeMBps=250,500,1000').path, ['ssd', 'writeMBps']);
  assert.deepEqual(parseSweepParam(t, 'chunk=64KiB,128KiB').values, [65536, 131072]);
  assert.ok(sweepablePaths(t).includes('expether.windowFrames'));
});

test('bad paths and values are refused with what is valid', () => {
  fails('host.lanez=1', /not a numeric parameter.*valid parameters: .*host\.lanes/s);
  fails('name=1', /not a numeric parameter/);
  fails('host.lanes=3', /lanes must be one of 1, 2, 4, 8, 16/);
  fails('pcie.mpsBytes=100', /must be one of 128/);
  fails('ssd.writeMBps=fast', /'fast' is not a value/);
  fails('depth=5..1', /must go up/);
  fails('depth', /PATH=VALUES/);
});

test('withParam copies the topology and changes one value', () => {
  const u = withParam(t, ['ssd', 'writeMBps'], 500);
  assert.equal(u.ssd.writeMBps, 500);
  assert.equal(t.ssd.writeMBps, 250);
});

test('a sweep runs the cartesian product and reports the metric', async () => {
  const r = await sweep({ topology: t, params: [parseSweepParam(t, 'ssd.writeMBps=250,1000'), parseSweepParam(t, 'depth=1,2')], via: 'dc-buffer', sizeBytes: 2 << 20, seed: 1, metric: 'mbPerSec', threads: 1 });
  assert.equal(r.rows.length, 4);
  const at = (w: number, d: number) => r.rows.find((x) => x.params['ssd.writeMBps'] === w && x.params.depth === d)!.value;
  assert.ok(at(1000, 2) > 1.5 * at(250, 2), 'a faster destination moves more');
  assert.ok(at(250, 2) > at(250, 1), 'overlap helps');
});

test('each sweep point carries its fidelity; the table and chart state it', async () => {
  const r = await sweep({ topology: t, params: [parseSweepParam(t, 'depth=1,2')], via: 'dc-buffer', sizeBytes: 2 << 20, seed: 1, metric: 'mbPerSec', threads: 1, fidelity: 'full' });
  for (const row of r.rows) {
    assert.equal(row.fidelity.mode, 'full');
    assert.equal(row.fidelity.exact, true);
    assert.equal(row.fidelity.detailedChunks, row.fidelity.totalChunks);
  }
  assert.deepEqual([r.fidelity.mode, r.fidelity.moves], ['full', 2]);
  assert.match(sweepTable(r), /^fidelity: full \(every TLP\)\n.*method/);
  assert.deepEqual((sweepChart(r).title as { subtitle: string[] }).subtitle.slice(-1), ['fidelity: full (every TLP)']);
  const fast = await sweep({ topology: t, params: [parseSweepParam(t, 'depth=2')], via: 'dc-buffer', sizeBytes: 2 << 20, seed: 1, metric: 'mbPerSec', threads: 1 });
  assert.equal(fast.rows[0].fidelity.mode, 'fast', 'fast is the default');
});

test('at burst granularity a sweep that leaves the checked matrix says so; one over host lanes does not', async () => {
  const run = (spec: string) => sweep({ topology: t, params: [parseSweepParam(t, spec)], via: 'dc-buffer', sizeBytes: 1 << 20, seed: 1, metric: 'mbPerSec', threads: 1, granularity: 'burst' });
  const off = sweepTable(await run('pcie.mrrsBytes=512'));
  assert.match(off, /^note: the burst bound is checked on the presets as shipped .* changes pcie\.mrrsBytes: check a point with --granularity tlp$/m);
  assert.doesNotMatch(sweepTable(await run('host.lanes=1')), /^note:/m);
});
