/**
 * The host's ext4 writer judged by the real tools: files copied between mkfs.ext4 -d images (the data
 * moved in memory standing for the DC operator) leave both images clean to `e2fsck -fn`, every copy
 * dumps byte for byte as its source under debugfs, and `stat` shows the same size, mode, owner and
 * times with no extent left unwritten. A copy stopped before its commit leaves an empty, clean file.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { Op } from '../../../src/host/coroutine.js';
import { MemoryBlockIo, runSync } from '../../../src/host/fs/block-io.js';
import { Ext4 } from '../../../src/host/fs/ext4.js';
import { copyFiles, type CopyRun } from '../../../src/host/fs/file-copy.js';
import { DconnectError } from '../../../src/core/errors.js';
import { cleanup, debugfs, dump, e2fsck, extentsOf, fragmentedWrite, keptFields, mkfs, seededBytes, SKIP_E2FS, stat, tempDir, writeTree } from '../../helpers/ext4-images.js';

const load = (img: string) => new MemoryBlockIo(new Uint8Array(readFileSync(img)));
const save = (io: MemoryBlockIo, img: string) => writeFileSync(img, io.bytes);
const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && Buffer.compare(a, b) === 0;
/** The device copy, in memory: what the DC operator does over the fabric. */
const memMove = (src: MemoryBlockIo, dst: MemoryBlockIo) => (runs: CopyRun[]): Op<void> => (k) => {
  for (const r of runs) dst.bytes.set(src.bytes.subarray(r.srcByte, r.srcByte + r.lengthBytes), r.dstByte);
  k(undefined);
};
const NOW = 1_800_000_000;
const opts = { recursive: false, force: false, nowSec: NOW };

function copy(srcImg: string, dstImg: string, from: string, to: string, o = opts, move?: (s: MemoryBlockIo, d: MemoryBlockIo) => (runs: CopyRun[]) => Op<void>) {
  const s = load(srcImg);
  const d = load(dstImg);
  const src = runSync(Ext4.mount(s));
  const dst = runSync(Ext4.mount(d));
  try {
    return runSync(copyFiles(src, dst, from, to, o, (move ?? memMove)(s, d)));
  } finally {
    save(d, dstImg);
  }
}

function judge(srcImg: string, dstImg: string, pairs: [string, string][]): void {
  for (const img of [srcImg, dstImg]) {
    const r = e2fsck(img);
    assert.equal(r.status, 0, `e2fsck -fn ${img}:\n${r.out}`);
  }
  for (const [s, d] of pairs) {
    assert.ok(same(dump(dstImg, d), dump(srcImg, s)), `${d} dumps as ${s}`);
    assert.deepEqual(keptFields(stat(dstImg, d)), keptFields(stat(srcImg, s)), `${d} keeps ${s}'s size, mode, owner and times`);
    assert.equal(extentsOf(dstImg, d).uninit, false, `${d} has no extent left unwritten`);
  }
}

describe('ext4 writer: file copies judged by e2fsck and debugfs', { skip: SKIP_E2FS }, () => {
  let dir = '';
  let srcImg = '';
  const fresh = (name: string, tree: string | null = null) => {
    const img = join(dir, name);
    mkfs(img, tree, '64M', ['-b', '4096']);
    return img;
  };
  before(() => {
    dir = tempDir('ext4-write');
    writeTree(join(dir, 'src'), {
      'data/odd.bin': seededBytes(300_001, 1),
      'data/sparse.bin': { size: 6 << 20, data: [[1 << 20, seededBytes(5000, 3)], [5 << 20, seededBytes(4096, 4)]] },
      'data/nested/a/b/c.txt': seededBytes(123, 5),
      'data/nested/a/empty.bin': new Uint8Array(0),
      'data/nested/top.bin': seededBytes(70_000, 6),
    });
    spawnSync('chmod', ['640', join(dir, 'src/data/odd.bin')]);
    spawnSync('touch', ['-d', '2001-02-03 04:05:06.789', join(dir, 'src/data/odd.bin')]);
    srcImg = fresh('src.ext4', join(dir, 'src'));
    // A fragmented file with a depth-1 tree (far more than 4 extents).
    const host = join(dir, 'frag.bin');
    writeFileSync(host, seededBytes(3 << 20, 7));
    fragmentedWrite(srcImg, host, '/data/frag.bin', 2000, 4096);
    assert.ok(extentsOf(srcImg, '/data/frag.bin').depth >= 1);
    writeTree(join(dir, 'dst'), { 'backup/keep.txt': seededBytes(50, 8) });
    for (let i = 0; i < 400; i++) writeTree(join(dir, 'dst'), { [`many/f-${i}`]: seededBytes(5, i) });
  });
  after(() => cleanup(dir));

  it('copies an odd-size, a sparse and a fragmented file into a linear directory', () => {
    const dst = fresh('dst1.ext4', join(dir, 'dst'));
    for (const f of ['odd.bin', 'sparse.bin', 'frag.bin']) {
      const r = copy(srcImg, dst, `/data/${f}`, `/backup/${f}`);
      assert.equal(r.files.length, 1);
      if (f === 'sparse.bin') assert.ok(r.dataBytes < 64 << 10, `holes stay holes: ${r.dataBytes} data bytes`);
      if (f === 'frag.bin') assert.ok(r.runs.length > 4, `${r.runs.length} runs`);
    }
    judge(srcImg, dst, ['odd.bin', 'sparse.bin', 'frag.bin'].map((f) => [`/data/${f}`, `/backup/${f}`]));
    assert.match(stat(dst, '/backup/odd.bin'), /Mode:\s+0640/);
  });

  it('copies a tree (-r) with nested directories, and into an existing directory under the source name', () => {
    const dst = fresh('dst2.ext4', join(dir, 'dst'));
    const r = copy(srcImg, dst, '/data/nested', '/backup', { ...opts, recursive: true });
    assert.equal(r.files.length, 3);
    assert.equal(r.directories, 3);
    judge(srcImg, dst, ['a/b/c.txt', 'a/empty.bin', 'top.bin'].map((f) => [`/data/nested/${f}`, `/backup/nested/${f}`]));
  });

  it('inserts into an htree directory leaf, and grows a linear directory by blocks', () => {
    const dst = fresh('dst3.ext4', join(dir, 'dst'));
    spawnSync('e2fsck', ['-fyD', dst]);
    assert.match(debugfs(dst, ['htree /many']), /Root node dump/);
    copy(srcImg, dst, '/data/odd.bin', '/many/odd.bin');
    // 150 more names in /backup (one 4 KiB block holds about 100 of these).
    const s = load(srcImg);
    const d = load(dst);
    const src = runSync(Ext4.mount(s));
    const fs = runSync(Ext4.mount(d));
    for (let i = 0; i < 150; i++) runSync(copyFiles(src, fs, '/data/nested/a/b/c.txt', `/backup/copy-with-a-longish-name-${i}.txt`, opts, memMove(s, d)));
    save(d, dst);
    judge(srcImg, dst, [['/data/odd.bin', '/many/odd.bin'], ['/data/nested/a/b/c.txt', '/backup/copy-with-a-longish-name-149.txt']]);
    assert.ok(Number(stat(dst, '/backup').match(/Size: (\d+)/)![1]) > 4096);
  });

  it('refuses an existing file unless forced, and then replaces it', () => {
    const dst = fresh('dst4.ext4', join(dir, 'dst'));
    const before = new Uint8Array(readFileSync(dst));
    assert.throws(() => copy(srcImg, dst, '/data/odd.bin', '/backup/keep.txt'), (e: unknown) => e instanceof DconnectError && e.code === 'FS_EXISTS' && /--force/.test(e.hint ?? ''));
    assert.ok(same(new Uint8Array(readFileSync(dst)), before), "nothing written");
    copy(srcImg, dst, '/data/frag.bin', '/backup/keep.txt', { ...opts, force: true });
    judge(srcImg, dst, [['/data/frag.bin', '/backup/keep.txt']]);
  });

  it("on 1 KiB-block images (Debian's default below 512 MiB): a tree and a 20 MiB file spanning lazily initialised groups", () => {
    const t = join(dir, 'small');
    writeTree(t, { 'big/twenty.bin': seededBytes(20 << 20, 11), 'big/n/x.txt': seededBytes(3000, 12) });
    const src = join(dir, 'src1k.ext4');
    const dst = join(dir, 'dst1k.ext4');
    mkfs(src, t, '64M');
    mkfs(dst, null, '64M');
    assert.match(debugfs(dst, ['stats']), /Block size:\s+1024/);
    assert.match(debugfs(dst, ['stats']), /Block not init/);
    const r = copy(src, dst, '/big', '/copy', { ...opts, recursive: true });
    assert.equal(r.files.length, 2);
    judge(src, dst, [['/big/twenty.bin', '/copy/twenty.bin'], ['/big/n/x.txt', '/copy/n/x.txt']]);
  });

  it('refuses copying a file onto itself or a tree into itself on one drive', () => {
    const img = fresh('self.ext4', join(dir, 'src'));
    const io = load(img);
    const fs = runSync(Ext4.mount(io));
    for (const [from, to, o] of [['/data/odd.bin', '/data/odd.bin', { ...opts, force: true }], ['/data', '/data/nested/inside', { ...opts, recursive: true }]] as const) {
      assert.throws(() => runSync(copyFiles(fs, fs, from, to, o, memMove(io, io))), (e: unknown) => e instanceof DconnectError && e.code === 'BAD_OPTION');
    }
  });

  it('a copy that fails before its commit leaves both images clean and the file empty (never old data)', () => {
    const dst = fresh('dst5.ext4', join(dir, 'dst'));
    const failing = () => (): Op<void> => () => {
      throw new DconnectError('DEVICE_ERROR', 'injected: the move failed');
    };
    assert.throws(() => copy(srcImg, dst, '/data/odd.bin', '/backup/odd.bin', opts, failing), /injected/);
    assert.equal(e2fsck(dst).status, 0, e2fsck(dst).out);
    assert.equal(dump(dst, '/backup/odd.bin').length, 0);
    assert.equal(extentsOf(dst, '/backup/odd.bin').uninit, true, 'the reservation stays unwritten');
  });
});
