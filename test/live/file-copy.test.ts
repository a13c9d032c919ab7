/**
 * Live file copies end to end (issue 23 items 3 and 4), judged by e2fsprogs: `up --image` seeds the
 * drives from images made by mkfs.ext4 -d, `copy --live sda:/path sdb:/path` copies files and trees as
 * host jobs, a box killed mid-copy leaves both file systems clean to e2fsck -fn with the destination
 * reserved and empty, `--resume` finishes it, and after `down` debugfs dumps every copy as its source.
 * Every command has a time limit; the nodes are stopped and the directory removed whatever happens.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { controlRequest } from '../../src/live/control-http.js';
import { CLI, COMMAND_MS, dconnect, mustRun } from '../helpers/cli.js';
import { cleanup, dump, e2fsck, extentsOf, mkfs, seededBytes, SKIP_E2FS, tempDir, writeTree } from '../helpers/ext4-images.js';

const MiB = 1 << 20;
const ok = (args: string[]): string => mustRun(args).stdout;
const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && Buffer.compare(a, b) === 0;

describe('live file copies: up --image, copy --live, a box killed mid-copy, --resume, judged by e2fsck and debugfs', { skip: SKIP_E2FS, timeout: 300_000 }, () => {
  const dir = tempDir('live-files');
  const state = join(dir, 's');
  const sdaFile = join(state, 'drives', 'box0.slot0.img');
  const sdbFile = join(state, 'drives', 'box0.slot1.img');
  const srcImg = join(dir, 'src.ext4');
  const dstImg = join(dir, 'dst.ext4');
  const big = seededBytes(40 * MiB + 12345, 11);

  before(() => {
    writeTree(join(dir, 'tree'), {
      'data/small.txt': seededBytes(5000, 1),
      'data/nested/deep/x.bin': seededBytes(300_000, 2),
      'data/big.bin': big,
      'data/sparse.bin': { size: 8 * MiB, data: [[2 * MiB, seededBytes(70_000, 3)]] },
    });
    mkfs(srcImg, join(dir, 'tree'), '128M', ['-b', '4096']);
    mkfs(dstImg, null, '128M', ['-b', '4096']);
    ok(['up', '--state', state, '--topology', 'paper-2012-live', '--set', 'ssd.capacityBytes=256MiB', '--pace', 'none', '--image', `sda=${srcImg}`, '--image', `sdb=${dstImg}`]);
  });
  after(() => {
    dconnect(['down', '--state', state]);
    cleanup(dir);
  });

  it('up --image is refused for a drive that holds data, a running fabric, or an image larger than the drive; nothing is written', () => {
    const running = dconnect(['up', '--state', state, '--image', `sda=${srcImg}`]);
    assert.notEqual(running.status, 0);
    assert.match(running.stderr, /running, its drives open/);
    const other = join(dir, 'small');
    const tooBig = dconnect(['up', '--state', other, '--topology', 'paper-2012-live', '--set', 'ssd.capacityBytes=64MiB', '--pace', 'none', '--image', `sda=${srcImg}`]);
    assert.notEqual(tooBig.status, 0);
    assert.match(tooBig.stderr, /BAD_IMAGE.*larger than the drive's 67108864/);
    assert.equal(existsSync(join(other, 'drives', 'box0.slot0.img')), false, 'nothing written');
    const unknown = dconnect(['up', '--state', other, '--topology', 'paper-2012-live', '--pace', 'none', '--image', `sdq=${srcImg}`]);
    assert.match(unknown.stderr, /no drive sdq/);
  });

  it('copies a tree live (-r): verified through both file systems; only metadata crosses the host link', () => {
    const job = JSON.parse(ok(['copy', 'sda:/data/nested', 'sdb:/nested', '-r', '--live', '--state', state, '--json']));
    assert.equal(job.state, 'done', JSON.stringify(job.error));
    assert.equal(job.result.verified, true);
    assert.equal(job.result.files, 1);
    assert.equal(job.result.directories, 2);
    assert.match(ok(['status', '--state', state]), new RegExp(`job ${job.id}: done, files sda:/data/nested -> sdb:/nested`));
    const small = JSON.parse(ok(['copy', 'sda:/data/small.txt', 'sdb:/small.txt', '--live', '--state', state, '--json']));
    assert.equal(small.state, 'done');
    const sparse = JSON.parse(ok(['copy', 'sda:/data/sparse.bin', 'sdb:/sparse.bin', '--live', '--state', state, '--json']));
    assert.equal(sparse.result.verified, true);
    assert.ok(sparse.result.dataBytes < 8 * MiB, 'holes move nothing');
    const exists = dconnect(['copy', 'sda:/data/small.txt', 'sdb:/small.txt', '--live', '--state', state]);
    assert.notEqual(exists.status, 0);
    assert.match(exists.stderr, /FS_EXISTS.*exists on the destination/);
    assert.doesNotMatch(exists.stderr, /--resume/, 'a refusal by the file systems is final: no resume offered');
    const missing = dconnect(['copy', 'sda:/data/nope.bin', 'sdb:/nope.bin', '--live', '--state', state]);
    assert.notEqual(missing.status, 0);
    assert.match(missing.stderr, /FS_NOT_FOUND.*no '\/data\/nope.bin'.*nothing is reserved on the destination/);
  });

  it('a box killed mid-copy: the job fails, both file systems are clean with the destination reserved and empty; up and --resume finish it', async () => {
    const box = JSON.parse(readFileSync(join(state, 'nodes', 'box0.json'), 'utf8')) as { pid: number };
    const child = spawn(process.execPath, [CLI, 'copy', 'sda:/data/big.bin', 'sdb:/big.bin', '--chunk', '1MiB', '--live', '--state', state, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (b) => (out += b));
    child.stderr.on('data', (b) => (err += b));
    const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
    try {
      const deadline = Date.now() + COMMAND_MS;
      for (;;) {
        assert.ok(Date.now() < deadline, 'the copy never got going');
        const jobs = await controlRequest<{ state: string; bytesDone: number; files?: { plan?: unknown } }[]>({ socketPath: join(state, 'host.sock') }, 'GET', '/jobs').catch(() => []);
        const job = jobs.find((j) => j.state === 'running' && j.files?.plan !== undefined);
        if (job && job.bytesDone >= 4 * MiB) break;
        await new Promise((r) => setTimeout(r, 5));
      }
      process.kill(box.pid, 'SIGKILL');
      const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), COMMAND_MS))]);
      assert.notEqual(code, 'timeout', 'the host noticed the box was gone');
      assert.notEqual(code, 0);
    } finally {
      child.kill('SIGKILL');
    }
    const failed = JSON.parse(out);
    assert.equal(failed.state, 'failed');
    assert.equal(failed.error.code, 'BOX_LOST');
    assert.match(err, /--resume/);
    // The box is dead and the host idle: the drive files are what a crash left.
    for (const f of [sdaFile, sdbFile]) {
      const r = e2fsck(f);
      assert.equal(r.status, 0, `${f}: ${r.out}`);
    }
    assert.equal(dump(sdbFile, '/big.bin').length, 0, 'reserved with size 0: it reads as nothing, never old data');
    assert.equal(extentsOf(sdbFile, '/big.bin').uninit, true, 'its blocks are reserved as unwritten extents');
    ok(['up', '--state', state]);
    const resumed = JSON.parse(ok(['copy', '--resume', failed.id, '--live', '--state', state, '--json']));
    assert.equal(resumed.state, 'done', JSON.stringify(resumed.error));
    assert.equal(resumed.resumes, 1);
    assert.equal(resumed.result.verified, true);
    assert.equal(resumed.result.movedBytes, resumed.result.dataBytes, 'the resumed run moved the data again');
  });

  it('after down: e2fsck -fn is clean on both drives and debugfs dumps every copy as its source', () => {
    ok(['down', '--state', state]);
    for (const f of [sdaFile, sdbFile]) {
      const r = e2fsck(f);
      assert.equal(r.status, 0, `${f}: ${r.out}`);
    }
    assert.ok(same(dump(sdbFile, '/big.bin'), big));
    assert.ok(same(dump(sdbFile, '/nested/deep/x.bin'), dump(srcImg, '/data/nested/deep/x.bin')));
    assert.ok(same(dump(sdbFile, '/small.txt'), dump(srcImg, '/data/small.txt')));
    assert.ok(same(dump(sdbFile, '/sparse.bin'), dump(srcImg, '/data/sparse.bin')));
    assert.equal(extentsOf(sdbFile, '/big.bin').uninit, false);
  });
});
