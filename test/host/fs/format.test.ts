/**
 * dconnect's own mkfs (host/fs/format.ts), judged by e2fsprogs: e2fsck -fn is clean on a fresh file
 * system and after files and directories are made in it through dconnect's code, and debugfs reads
 * them back.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MemoryBlockIo, runSync } from '../../../src/host/fs/block-io.js';
import { Ext4 } from '../../../src/host/fs/ext4.js';
import { formatExt4 } from '../../../src/host/fs/format.js';
import { commitFile, makeDir, reserveFile } from '../../../src/host/fs/create.js';
import { ROOT_INO } from '../../../src/host/fs/inode.js';
import { DconnectError } from '../../../src/core/errors.js';
import { cleanup, debugfs, dump, e2fsck, SKIP_E2FS, tempDir } from '../../helpers/ext4-images.js';

const MiB = 2 ** 20;
const attrs = { mode: 0o644, uid: 1000, gid: 1000, atime: 1_700_000_000, atimeExtra: 0, mtime: 1_700_000_000, mtimeExtra: 0, ctime: 1_700_000_000 };

describe('formatExt4: a file system e2fsck accepts', { skip: SKIP_E2FS }, () => {
  let dir = '';
  before(() => (dir = tempDir('format')));
  after(() => cleanup(dir));

  it('formats 5 groups (superblock backups in groups 1 and 3) clean to e2fsck -fn, with lost+found', () => {
    const io = new MemoryBlockIo(new Uint8Array(640 * MiB));
    runSync(formatExt4(io, { sizeBytes: 640 * MiB, nowSec: 1_700_000_000, seed: 7, label: 'dconnect' }));
    const img = join(dir, 'fresh.ext4');
    writeFileSync(img, io.bytes);
    const r = e2fsck(img);
    assert.equal(r.status, 0, r.out);
    assert.match(debugfs(img, ['ls -l /']), /lost\+found/);
    const fs = runSync(Ext4.mount(io));
    assert.equal(fs.sb.groupCount, 5);
    assert.equal(runSync(fs.lookup('/lost+found')).ino, 11);
  });

  it('takes files and directories made by dconnect (reserved, then committed) clean to e2fsck -fn', () => {
    const io = new MemoryBlockIo(new Uint8Array(256 * MiB));
    runSync(formatExt4(io, { sizeBytes: 256 * MiB, nowSec: 1_700_000_000, seed: 1 }));
    const fs = runSync(Ext4.mount(io));
    const d = runSync(makeDir(fs, ROOT_INO, 'tree', '/tree', { ...attrs, mode: 0o755 }));
    const size = 200_000;
    const res = runSync(reserveFile(fs, d.ino, 'f', '/tree/f', attrs, size, [{ logical: 0, length: Math.ceil(size / 4096) }], false));
    runSync(fs.sync());
    for (const e of res.extents) io.bytes.fill(0xab, e.physical * 4096, (e.physical + e.length) * 4096);
    runSync(commitFile(fs, res));
    runSync(fs.sync());
    const img = join(dir, 'files.ext4');
    writeFileSync(img, io.bytes);
    const r = e2fsck(img);
    assert.equal(r.status, 0, r.out);
    const got = dump(img, '/tree/f');
    assert.equal(got.length, size);
    assert.ok(got.every((b) => b === 0xab));
  });

  it('refuses a size that is not whole groups, or larger than the device', () => {
    const io = new MemoryBlockIo(new Uint8Array(128 * MiB));
    assert.throws(() => runSync(formatExt4(io, { sizeBytes: 100 * MiB, nowSec: 0, seed: 1 })), (e: unknown) => e instanceof DconnectError && /128 MiB block groups/.test(e.message));
    assert.throws(() => runSync(formatExt4(io, { sizeBytes: 256 * MiB, nowSec: 0, seed: 1 })), (e: unknown) => e instanceof DconnectError && /does not fit/.test(e.message));
  });
});
