/**
 * Splitting full htree leaves (host/fs/htree.ts), judged by e2fsprogs: a directory of 2000 names made
 * by mkfs.ext4 -d and indexed by e2fsck -fD (its leaves packed full) takes 1500 more names through
 * dconnect's code; the root gains index entries (leaves were split), e2fsck -fn is clean, and debugfs
 * lists every name and dumps a copy placed in a split leaf.
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
import { makeDir } from '../../../src/host/fs/create.js';
import { hashBoundary } from '../../../src/host/fs/htree.js';
import { cleanup, debugfs, dump, e2fsck, mkfs, seededBytes, SKIP_E2FS, tempDir, writeTree } from '../../helpers/ext4-images.js';

const NOW = 1_800_000_000;
const rootEntries = (img: string, dir: string) => Number(/Number of entries \(count\): (\d+)/.exec(debugfs(img, [`htree ${dir}`]))?.[1] ?? 0);

it('hashBoundary cuts near the middle where the hash changes, never inside a run of equal hashes', () => {
  assert.equal(hashBoundary([1, 2, 3, 4]), 2);
  assert.equal(hashBoundary([1, 2, 2, 2, 5]), 1);
  assert.equal(hashBoundary([2, 2, 2, 3]), 3);
  assert.equal(hashBoundary([7, 7, 7]), null);
});

describe('htree leaf splits, judged by e2fsck and debugfs', { skip: SKIP_E2FS, timeout: 300_000 }, () => {
  let dir = '';
  let img = '';
  before(() => {
    dir = tempDir('htree');
    const files: Record<string, Uint8Array> = { 'src/payload.bin': seededBytes(20_000, 1) };
    for (let i = 0; i < 2000; i++) files[`many/entry-with-a-name-of-some-length-${String(i).padStart(5, '0')}`] = new Uint8Array(0);
    writeTree(join(dir, 'tree'), files);
    img = join(dir, 'fs.ext4');
    mkfs(img, join(dir, 'tree'), '64M', ['-b', '4096']);
    spawnSync('e2fsck', ['-fyD', img]);
    assert.match(debugfs(img, ['htree /many']), /Root node dump/);
  });
  after(() => cleanup(dir));

  it('1500 more names: leaves split, the root indexes the new ones, e2fsck -fn clean, every name listed', () => {
    const before = rootEntries(img, '/many');
    const io = new MemoryBlockIo(new Uint8Array(readFileSync(img)));
    const fs = runSync(Ext4.mount(io));
    const move = (runs: CopyRun[]): Op<void> => (k) => {
      for (const r of runs) io.bytes.copyWithin(r.dstByte, r.srcByte, r.srcByte + r.lengthBytes);
      k(undefined);
    };
    const many = runSync(fs.lookup('/many'));
    const attrs = { mode: 0o755, uid: 0, gid: 0, atime: NOW, atimeExtra: 0, mtime: NOW, mtimeExtra: 0, ctime: NOW };
    for (let i = 0; i < 1400; i++) runSync(makeDir(fs, many.ino, `added-directory-${i}`, `/many/added-directory-${i}`, attrs));
    for (let i = 0; i < 100; i++) runSync(copyFiles(fs, fs, '/src/payload.bin', `/many/copied-file-${i}.bin`, { recursive: false, force: false, nowSec: NOW }, move));
    runSync(fs.sync());
    writeFileSync(img, io.bytes);
    const r = e2fsck(img);
    assert.equal(r.status, 0, r.out);
    const after = rootEntries(img, '/many');
    assert.ok(after > before, `the root indexes ${after} leaves, ${before} before: leaves were split`);
    const names = new Set(debugfs(img, ['ls /many']).split(/\s+/));
    for (let i = 0; i < 2000; i++) assert.ok(names.has(`entry-with-a-name-of-some-length-${String(i).padStart(5, '0')}`), `old name ${i}`);
    for (let i = 0; i < 1400; i++) assert.ok(names.has(`added-directory-${i}`), `new directory ${i}`);
    for (let i = 0; i < 100; i++) assert.ok(names.has(`copied-file-${i}.bin`), `new file ${i}`);
    assert.deepEqual(dump(img, '/many/copied-file-99.bin'), dump(img, '/src/payload.bin'));
    // dconnect's own lookups go through the split index too.
    const again = runSync(Ext4.mount(new MemoryBlockIo(new Uint8Array(readFileSync(img)))));
    assert.equal(runSync(again.lookup('/many/added-directory-777')).ino > 0, true);
    assert.equal(runSync(again.lookup('/many/entry-with-a-name-of-some-length-01234')).ino > 0, true);
  });
});
