/**
 * The host's ext4 reader against images made by Debian's mkfs.ext4 -d (and rearranged by debugfs):
 * every file read through dconnect's code equals the bytes debugfs dumps; extent trees of depth 0..2,
 * htree lookups, and refusals that name the feature.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32c } from '../../../src/host/fs/crc32c.js';
import { MemoryBlockIo, runSync } from '../../../src/host/fs/block-io.js';
import { Ext4 } from '../../../src/host/fs/ext4.js';
import { records } from '../../../src/host/fs/dirent.js';
import { DconnectError } from '../../../src/core/errors.js';
import { cleanup, debugfs, dump, extentsOf, fragmentedWrite, mkfs, seededBytes, SKIP_E2FS, tempDir, writeTree } from '../../helpers/ext4-images.js';

const mount = (img: string) => runSync(Ext4.mount(new MemoryBlockIo(new Uint8Array(readFileSync(img)))));
function readAll(fs: Ext4, path: string): Uint8Array {
  const i = runSync(fs.lookup(path));
  const map = runSync(fs.fileMap(i));
  return runSync(fs.readFile(i, map, 0, i.sizeBytes));
}
const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && Buffer.compare(a, b) === 0;

function refusedWith(f: () => unknown, code: string, re: RegExp): void {
  assert.throws(f, (e: unknown) => e instanceof DconnectError && e.code === code && re.test(e.message), `expected ${code} matching ${re}`);
}

it('crc32c gives the standard check value (ext4 stores it without the final inversion)', () => {
  assert.equal(~crc32c(0xffffffff, new TextEncoder().encode('123456789')) >>> 0, 0xe3069283);
});

describe('ext4 reader on mkfs.ext4 -d images', { skip: SKIP_E2FS }, () => {
  let dir = '';
  const files = {
    'data/odd.bin': seededBytes(300_001, 1),
    'data/sub/deeper/leaf.txt': seededBytes(17, 2),
    'data/sparse.bin': { size: 5 << 20, data: [[1 << 20, seededBytes(5000, 3)], [4 << 20, seededBytes(4096, 4)]] as [number, Uint8Array][] },
    'empty': new Uint8Array(0),
  };
  before(() => {
    dir = tempDir('ext4-read');
    writeTree(join(dir, 'tree'), files);
    for (let i = 0; i < 400; i++) writeTree(join(dir, 'tree'), { [`many/file-${i}.txt`]: seededBytes(10, i) });
  });
  after(() => cleanup(dir));

  for (const [label, opts, size] of [['Debian defaults (1 KiB blocks at 64 MiB)', [], '64M'], ['4 KiB blocks', ['-b', '4096'], '64M']] as const) {
    it(`reads every file byte for byte as debugfs dumps it: ${label}`, () => {
      const img = join(dir, `img-${opts.length}.ext4`);
      mkfs(img, join(dir, 'tree'), size, [...opts]);
      const fs = mount(img);
      assert.ok(fs.sb.features.includes('metadata_csum') && fs.sb.features.includes('64bit') && fs.sb.features.includes('flex_bg'), fs.sb.features.join(' '));
      for (const p of ['/data/odd.bin', '/data/sub/deeper/leaf.txt', '/data/sparse.bin', '/empty', '/many/file-123.txt']) assert.ok(same(readAll(fs, p), dump(img, p)), p);
      // The sparse file's holes stay holes in its map.
      const sparse = runSync(fs.fileMap(runSync(fs.lookup('/data/sparse.bin'))));
      const mapped = sparse.extents.reduce((n, e) => n + e.length, 0) * fs.blockBytes;
      assert.ok(mapped < 64 << 10, `sparse file maps ${mapped} bytes`);
      const names = runSync(fs.readDir(runSync(fs.lookup('/data')))).map((e) => e.name).sort();
      assert.deepEqual(names, ['.', '..', 'odd.bin', 'sparse.bin', 'sub']);
    });
  }

  it('looks names up through an htree (e2fsck -D indexed) directory', () => {
    const img = join(dir, 'htree.ext4');
    mkfs(img, join(dir, 'tree'), '64M', ['-b', '4096']);
    const { spawnSync } = require_();
    spawnSync('e2fsck', ['-fyD', img]);
    assert.match(debugfs(img, ['htree /many']), /Root node dump/);
    const fs = mount(img);
    const many = runSync(fs.lookup('/many'));
    assert.ok(fs.isIndexed(many));
    for (const i of [0, 77, 399]) {
      const e = runSync(fs.findEntry(many, `file-${i}.txt`));
      assert.ok(e, `file-${i}.txt found`);
      // The leaf the hash leads to holds the name (no fallback to a linear scan needed).
      const leaf = runSync(fs.dxLeaf(many, new TextEncoder().encode(`file-${i}.txt`)));
      const ext = leaf.map.extents.find((x) => leaf.logical >= x.logical && leaf.logical < x.logical + x.length)!;
      const block = runSync(fs.block(ext.physical + leaf.logical - ext.logical));
      const names = records(block, true, 'leaf').map((r) => new TextDecoder().decode(r.name));
      assert.ok(names.includes(`file-${i}.txt`), `leaf ${leaf.logical} holds file-${i}.txt`);
      assert.ok(same(readAll(fs, `/many/file-${i}.txt`), seededBytes(10, i)));
    }
    assert.equal(runSync(fs.findEntry(many, 'absent')), null);
  });

  it('reads fragmented files through extent trees of depth 1 and 2', () => {
    const img = join(dir, 'frag.ext4');
    // 1 KiB blocks: a leaf holds 84 extents, so 400 one-block fragments need depth 2.
    mkfs(img, null, '16M', ['-b', '1024']);
    const big = seededBytes(400 << 10, 9);
    const host = join(dir, 'big.bin');
    writeFileSync(host, big);
    fragmentedWrite(img, host, '/big.bin', 900, 1024);
    const ex = extentsOf(img, '/big.bin');
    assert.ok(ex.depth >= 2, `depth ${ex.depth}: ${ex.text.slice(0, 400)}`);
    const fs = mount(img);
    const map = runSync(fs.fileMap(runSync(fs.lookup('/big.bin'))));
    assert.equal(map.extents.length, ex.leaves);
    assert.ok(same(readAll(fs, '/big.bin'), big));
  });

  it('refuses features it does not handle, naming each', () => {
    for (const [feature, extra] of [['inline_data', []], ['encrypt', []], ['bigalloc', ['-C', '16384']], ['casefold', []], ['verity', []]] as [string, string[]][]) {
      const img = join(dir, `f-${feature}.ext4`);
      mkfs(img, null, '32M', ['-b', '4096', '-O', feature, ...extra]);
      refusedWith(() => mount(img), 'FS_UNSUPPORTED', new RegExp(`'${feature}'`));
    }
  });

  it('refuses a dirty journal, an unknown incompat feature, and a corrupt inode', () => {
    const img = join(dir, 'dirty.ext4');
    mkfs(img, join(dir, 'tree'), '32M', ['-b', '4096']);
    debugfs(img, ['feature needs_recovery'], true);
    refusedWith(() => mount(img), 'FS_UNSUPPORTED', /needs_recovery.*dirty journal/);
    // An unknown incompat bit (0x80000000), superblock checksum resealed so only the feature is wrong.
    mkfs(img, join(dir, 'tree'), '32M', ['-b', '4096']);
    const bytes = new Uint8Array(readFileSync(img));
    bytes[1024 + 0x63] |= 0x80;
    const v = new DataView(bytes.buffer);
    v.setUint32(1024 + 0x3fc, crc32c(0xffffffff, bytes.subarray(1024, 1024 + 0x3fc)), true);
    refusedWith(() => runSync(Ext4.mount(new MemoryBlockIo(bytes))), 'FS_UNSUPPORTED', /unknown feature bit 0x80000000/);
    // A flipped byte in /data/odd.bin's inode: its checksum catches it.
    mkfs(img, join(dir, 'tree'), '32M', ['-b', '4096']);
    const fs = mount(img);
    const ino = runSync(fs.lookup('/data/odd.bin')).ino;
    const g = fs.groups[Math.floor((ino - 1) / fs.sb.inodesPerGroup)];
    const at = g.inodeTable * fs.blockBytes + ((ino - 1) % fs.sb.inodesPerGroup) * fs.sb.inodeBytes;
    const raw = new Uint8Array(readFileSync(img));
    raw[at + 0x10] ^= 1;
    const fs2 = runSync(Ext4.mount(new MemoryBlockIo(raw)));
    refusedWith(() => runSync(fs2.lookup('/data/odd.bin')), 'FS_CORRUPT', /inode \d+: checksum/);
  });
});

import { createRequire } from 'node:module';
function require_(): typeof import('node:child_process') {
  return createRequire(import.meta.url)('node:child_process');
}
