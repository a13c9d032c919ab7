import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dconnectIn as run } from '../helpers/cli-in-process.js';

/** Text before the "wrote ..." line: the tables themselves. */
const tables = (stdout: string) => stdout.slice(0, stdout.indexOf('\nwrote '));
/** report.md's one run-dependent figure: the wall time (and, merged, whose it is). */
const maskWall = (md: string) => md.replace(/ in [\d.]+ s of wall time( \(summed over \d shards?, merged by `dconnect merge`\))?\./, ' in WALL.');

/**
 * "Byte for byte" is over everything deterministic that a run writes: every JSON file, SVG and PNG
 * chart, the tables on stdout and the --json object; report.md too, but for its wall-time figure,
 * the one number that differs between any two runs.
 */
function assertSameRun(one: string, merged: string, oneStdout: string, mergedStdout: string, json = false) {
  const files = readdirSync(one).sort();
  assert.deepEqual(readdirSync(merged).sort(), files);
  for (const f of files) {
    if (f === 'report.md') assert.equal(maskWall(readFileSync(join(merged, f), 'utf8')), maskWall(readFileSync(join(one, f), 'utf8')));
    else assert.ok(readFileSync(join(merged, f), 'base64') === readFileSync(join(one, f), 'base64'), `${f} differs`);
  }
  if (json) assert.equal(mergedStdout, oneStdout);
  else assert.equal(tables(mergedStdout), tables(oneStdout));
}

async function shardRun(command: string[], n: number, dir: string): Promise<string[]> {
  const files: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await run(...command, '--shard', `${i + 1}/${n}`, '--threads', '1', '--out', dir);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^shard ${i + 1}/${n} of ${command[0]}: \\d+ of \\d+ jobs; wrote `));
    files.push(join(dir, `${command[0]}.shard-${i + 1}-of-${n}.json`));
  }
  return files;
}

test('repro: 3 shards merged equal one unsharded run, byte for byte', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'dconnect-shard-'));
  const command = ['repro', '--runs', '2', '--size', '4MiB', '--set', 'ssd.writeMBps=300'];
  const one = await run(...command, '--threads', '2', '--out', join(tmp, 'one'), '--json');
  assert.ok(one.code === 0 || one.code === 1, one.stderr);
  const files = await shardRun(command, 3, join(tmp, 'shards'));
  assert.deepEqual(readdirSync(join(tmp, 'shards')).sort(), ['repro.shard-1-of-3.json', 'repro.shard-2-of-3.json', 'repro.shard-3-of-3.json'], 'a shard writes only its result file');
  const shard = JSON.parse(readFileSync(files[1], 'utf8'));
  assert.deepEqual([shard.command, shard.shard, shard.totalJobs, shard.jobs.length], ['repro', { index: 2, count: 3 }, 16, 5]);
  assert.deepEqual(shard.jobs.map((j: { index: number; id: string }) => [j.index, j.id]).slice(0, 2), [[1, 'fig5 direct x8 seed 2'], [4, 'fig5 direct x1 seed 1']]);
  for (const k of ['dconnectVersion', 'parametersSha256', 'assignment', 'wallSeconds']) assert.ok(k in shard, k);
  assert.deepEqual(Object.keys(shard.parameters).sort(), ['fidelity', 'only', 'overrides', 'runs', 'sizeBytes', 'topology']);

  const merged = await run('merge', ...[...files].reverse(), '--out', join(tmp, 'merged'), '--json');
  assert.equal(merged.code, one.code, merged.stderr);
  assert.match(merged.stderr, /^merge: 3 shards of repro, 16 jobs \(their wall time summed: [\d.]+ s\); fidelity: /m);
  assertSameRun(join(tmp, 'one'), join(tmp, 'merged'), one.stdout, merged.stdout, true);
  assert.match(readFileSync(join(tmp, 'merged', 'report.md'), 'utf8'), /summed over 3 shards, merged by `dconnect merge`/);
  assert.deepEqual(JSON.parse(merged.stdout).overrides, [{ set: 'ssd.writeMBps=300', path: 'ssd.writeMBps' }]);
});

test('sweep: 3 shards merged equal one unsharded run, byte for byte (and more shards than points works)', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'dconnect-shard-'));
  const command = ['sweep', '--param', 'depth=1..3', '--param', 'ssd.writeMBps=250,500', '--size', '2MiB'];
  const one = await run(...command, '--out', join(tmp, 'one'));
  assert.equal(one.code, 0, one.stderr);
  const merged = await run('merge', ...(await shardRun(command, 3, join(tmp, 'shards'))), '--out', join(tmp, 'merged'));
  assert.equal(merged.code, 0, merged.stderr);
  assertSameRun(join(tmp, 'one'), join(tmp, 'merged'), one.stdout, merged.stdout);
  const small = ['sweep', '--param', 'depth=1,2', '--size', '1MiB'];
  const wide = await run('merge', ...(await shardRun(small, 4, join(tmp, 'wide'))), '--out', join(tmp, 'wide-merged'), '--json');
  assert.equal(wide.code, 0, wide.stderr);
  assert.deepEqual(JSON.parse(wide.stdout).rows.map((r: { params: { depth: number } }) => r.params.depth), [1, 2]);
});

test('bad --shard and bad shard sets exit 2, naming the problem, with nothing written', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'dconnect-shard-'));
  const command = ['sweep', '--param', 'depth=1,2,3', '--size', '1MiB'];
  const [s1, s2, s3] = await shardRun(command, 3, join(tmp, 'shards'));
  const [other] = await shardRun(['sweep', '--param', 'depth=1,2,3', '--size', '2MiB'], 1, join(tmp, 'other'));
  const never = join(tmp, 'never');
  const cases: [string[], RegExp][] = [
    [['repro', '--shard', '0/3'], /BAD_OPTION.*--shard 0\/3: I must be 1 to 3 \(shards count from 1\)/],
    [['repro', '--shard', '4/3'], /BAD_OPTION.*I must be 1 to 3/],
    [['sweep', '--param', 'depth=1', '--shard', '1/0'], /BAD_OPTION.*N must be 1 to 1000/],
    [['sweep', '--param', 'depth=1', '--shard', 'half'], /BAD_OPTION.*--shard 'half' is not I\/N/],
    [['merge', s1, s3], /BAD_SHARDS.*missing shard 2\/3 of this sweep run \(have 1\/3, 3\/3\)/],
    [['merge', s1, s2, s2, s3], /BAD_SHARDS.*shard 2\/3 is given 2 times/],
    [['merge', s1, s2, s3, other], /BAD_SHARDS.*come from runs with different parameters: sizeBytes: 2097152 vs 1048576/],
    [['merge', s1, join(tmp, 'no-such.json')], /BAD_SHARDS.*no-such\.json: cannot read a shard result file/],
    [['merge'], /missing required argument 'files'/],
  ];
  for (const [args, re] of cases) {
    const r = await run(...args, '--out', never);
    assert.equal(r.code, 2, args.join(' '));
    assert.match(r.stderr, re, args.join(' '));
    assert.equal(r.stdout, '', args.join(' '));
    assert.equal(existsSync(never), false, `${args.join(' ')}: nothing written`);
  }
  assert.match((await run('repro', '--help')).stdout, /--shard <I\/N>.*I counts\s+from 1/s);
});
