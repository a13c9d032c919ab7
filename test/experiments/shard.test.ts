import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DconnectError } from '../../src/core/errors.js';
import type { JobResult } from '../../src/experiments/jobs.js';
import { jobsOf, reproParameters, reproPlanOf, sweepParameters, sweepPlanOf } from '../../src/experiments/shard-plans.js';
import { canonicalJson, inShard, mergeShards, parseShard, readShardFile, shardFile, type ShardFile, type ShardSpec } from '../../src/experiments/shard.js';
import { parseSweepParam } from '../../src/experiments/sweep-params.js';
import { sweepJobs, type SweepPlan } from '../../src/experiments/sweep.js';
import { reproJobs } from '../../src/experiments/repro.js';
import { loadTopology } from '../../src/topology/load.js';

const t = loadTopology('paper-2012');
const plan: SweepPlan = { topology: t, overrides: [], params: [parseSweepParam(t, 'depth=1..5')], via: 'dc-buffer', sizeBytes: 1 << 20, seed: 1, metric: 'mbPerSec', fidelity: 'fast' };
const jobs = sweepJobs(plan);
/** A stand-in result that says which job it belongs to. */
const fake = (k: number) => ({ mbPerSec: k }) as unknown as JobResult;
const shardOf = (spec: ShardSpec, parameters = sweepParameters(plan)): ShardFile =>
  shardFile('sweep', parameters, spec, jobs, jobs.map((_, k) => k).filter((k) => inShard(k, spec)).map(fake), 1);
const shards = (n: number) => Array.from({ length: n }, (_, i) => ({ path: `s${i + 1}.json`, file: shardOf({ index: i + 1, count: n }) }));
const refused = (fn: () => unknown, re: RegExp) => assert.throws(fn, (e: unknown) => e instanceof DconnectError && e.code === 'BAD_SHARDS' && re.test(`${e.message}\n${e.hint ?? ''}`));

test('--shard I/N: I counts from 1; bad forms are refused with what to give', () => {
  assert.deepEqual(parseShard('2/3'), { index: 2, count: 3 });
  assert.deepEqual(parseShard(' 1 / 1 '), { index: 1, count: 1 });
  for (const bad of ['0/3', '4/3', '1/0', '3', 'a/b', '1/3/2', '-1/3', '1/1001']) {
    assert.throws(() => parseShard(bad), (e: unknown) => e instanceof DconnectError && e.code === 'BAD_OPTION' && /--shard/.test(e.message) && /counts from 1/.test(e.hint ?? ''), bad);
  }
});

test('shares are round-robin over the canonical job order: every job in exactly one shard, sizes within one', () => {
  for (const n of [1, 2, 3, 7, 20]) {
    const owners = jobs.map((_, k) => Array.from({ length: n }, (_, i) => i + 1).filter((i) => inShard(k, { index: i, count: n })));
    assert.ok(owners.every((o) => o.length === 1), `n=${n}`);
    const sizes = Array.from({ length: n }, (_, i) => owners.filter((o) => o[0] === i + 1).length);
    assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `n=${n}: ${sizes}`);
  }
  assert.deepEqual(shardOf({ index: 2, count: 3 }).jobs.map((j) => [j.index, j.id]), [[1, 'depth=2'], [4, 'depth=5']]);
});

test('merge puts every result back in job order, whatever the order of the files, also with empty shards', () => {
  for (const n of [1, 3, 8]) {
    const m = mergeShards(shards(n).reverse(), jobsOf);
    assert.deepEqual(m.results.map((r) => r.mbPerSec), [0, 1, 2, 3, 4]);
    assert.equal(m.count, n);
    assert.equal(m.command, 'sweep');
  }
});

test('merge refuses missing, duplicate, mismatched and edited shards, naming them', () => {
  const three = shards(3);
  refused(() => mergeShards([three[0], three[2]], jobsOf), /missing shard 2\/3 of this sweep run \(have 1\/3, 3\/3\)\n.*--shard 2\/3/);
  refused(() => mergeShards([three[0]], jobsOf), /missing shards 2\/3, 3\/3/);
  refused(() => mergeShards([...three, { ...three[1], path: 'again.json' }], jobsOf), /shard 2\/3 is given 2 times \(s2\.json, again\.json\)/);
  refused(() => mergeShards([], jobsOf), /no shard result files/);
  const other = { path: 'big.json', file: shardOf({ index: 2, count: 3 }, sweepParameters({ ...plan, sizeBytes: 2 << 20 })) };
  refused(() => mergeShards([three[0], other, three[2]], jobsOf), /big\.json and s1\.json come from runs with different parameters: sizeBytes: 2097152 vs 1048576/);
  const two = shards(2);
  refused(() => mergeShards([three[0], two[1], three[2]], jobsOf), /different numbers of shards \(2, 3\)/);
  const short = { ...three[1], file: { ...three[1].file, jobs: three[1].file.jobs.slice(1) } };
  refused(() => mergeShards([three[0], short, three[2]], jobsOf), /s2\.json \(shard 2\/3\) holds 1 job of 5, not its share of this run \(2 of 5/);
  const newer = { ...three[1], file: { ...three[1].file, dconnectVersion: '9.9.9' } };
  refused(() => mergeShards([three[0], newer, three[2]], jobsOf), /different dconnect versions \(9\.9\.9, /);
});

test('a shard file is read back only if it is one: format, shape, and parameters matching their digest', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dconnect-shard-'));
  const write = (name: string, v: unknown) => {
    writeFileSync(join(dir, name), typeof v === 'string' ? v : JSON.stringify(v));
    return join(dir, name);
  };
  const good = shardOf({ index: 1, count: 2 });
  assert.equal(canonicalJson(readShardFile(write('good.json', good))), canonicalJson(good));
  refused(() => readShardFile(write('text.json', 'not json')), /cannot read a shard result file/);
  refused(() => readShardFile(write('other.json', { fig5: [] })), /is not a dconnect shard result file/);
  refused(() => readShardFile(write('v2.json', { ...good, formatVersion: 2 })), /shard format version 2/);
  refused(() => readShardFile(write('shape.json', { ...good, shard: { index: 3, count: 2 } })), /missing or malformed fields/);
  refused(() => readShardFile(write('edited.json', { ...good, parameters: { ...good.parameters, seed: 2 } })), /parameters do not match their sha256/);
  assert.equal(canonicalJson({ b: 1, a: [{ d: 2, c: 3 }] }), '{"a":[{"c":3,"d":2}],"b":1}');
});

test('parameters carry the plan: jobs rebuilt from them equal the run\'s own', () => {
  const rp = { topology: t, overrides: [{ set: 'ssd.writeMBps=500', path: 'ssd.writeMBps' }], runs: 2, sizeBytes: 1 << 20, only: ['fig5' as const], fidelity: 'full' as const };
  const back = JSON.parse(JSON.stringify(reproParameters(rp)));
  assert.deepEqual(reproPlanOf(back), rp);
  assert.equal(canonicalJson(jobsOf('repro', back)), canonicalJson(reproJobs(rp)));
  const sp = JSON.parse(JSON.stringify(sweepParameters(plan)));
  assert.equal(canonicalJson(jobsOf('sweep', sp)), canonicalJson(jobs));
  assert.deepEqual(sweepPlanOf(sp).params, plan.params);
  assert.throws(() => sweepPlanOf({ ...sp, params: [{ name: 'host.lanes', values: [3] }] }), /host\.lanes=3 is not valid/);
  refused(() => reproPlanOf({ ...back, runs: 0 }), /runs is not 1\.\.100/);
});
