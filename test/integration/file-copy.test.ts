/**
 * File copies in simulation, judged by the real tools (issue 23): images made by mkfs.ext4 -d are
 * loaded into the drives (--image), files and trees are copied directly through the DC buffer (and
 * conventionally), the drives are saved (--save), and then e2fsck -fn is clean on both, debugfs dumps
 * every copy byte for byte as its source, stat shows the same size, mode, owner and times, and no
 * extent is left unwritten. A move that fails leaves both clean and the destination empty.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DconnectError } from '../../src/core/errors.js';
import { runFileCopy, runListing } from '../../src/runtime/files.js';
import { imageOf, saveOf } from '../../src/cli/image-files.js';
import { loadTopology } from '../../src/topology/load.js';
import { applySettings } from '../../src/topology/params.js';
import { cleanup, dump, e2fsck, extentsOf, fragmentedWrite, keptFields, mkfs, seededBytes, SKIP_E2FS, stat, tempDir, writeTree } from '../helpers/ext4-images.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
/** Drives of 128 MiB: images of 64 MiB fit, and saving a drive writes little. */
const topology = applySettings(loadTopology('paper-2012'), ['ssd.capacityBytes=128MiB']).topology;
const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && Buffer.compare(a, b) === 0;

describe('file copies between simulated drives, judged by e2fsck and debugfs', { skip: SKIP_E2FS, timeout: 300_000 }, () => {
  let dir = '';
  let srcImg = '';
  let dstImg = '';
  before(() => {
    dir = tempDir('file-copy');
    writeTree(join(dir, 'src'), {
      'data/odd.bin': seededBytes(1_000_003, 1),
      'data/sparse.bin': { size: 16 << 20, data: [[3 << 20, seededBytes(70_000, 2)], [15 << 20, seededBytes(4096, 3)]] },
      'data/nested/a/b/deep.txt': seededBytes(99, 4),
      'data/nested/top.bin': seededBytes(200_000, 5),
    });
    for (let i = 0; i < 300; i++) writeTree(join(dir, 'src'), { [`data/many/f${i}`]: seededBytes(1 + i, 100 + i) });
    srcImg = join(dir, 'src.ext4');
    mkfs(srcImg, join(dir, 'src'), '64M', ['-b', '4096']);
    const big = join(dir, 'frag.bin');
    writeFileSync(big, seededBytes(6 << 20, 6));
    fragmentedWrite(srcImg, big, '/data/frag.bin', 3000, 4096);
    writeTree(join(dir, 'dst'), { 'backup/old.txt': seededBytes(10, 7) });
    dstImg = join(dir, 'dst.ext4');
    mkfs(dstImg, join(dir, 'dst'), '64M', ['-b', '4096']);
  });
  after(() => cleanup(dir));

  const judge = (dstOut: string, pairs: [string, string][]) => {
    for (const img of [srcImg, dstOut]) assert.equal(e2fsck(img).status, 0, e2fsck(img).out);
    for (const [s, d] of pairs) {
      assert.ok(same(dump(dstOut, d), dump(srcImg, s)), `${d} dumps as ${s}`);
      assert.deepEqual(keptFields(stat(dstOut, d)), keptFields(stat(srcImg, s)), `${d}: size, mode, owner, times`);
      assert.equal(extentsOf(dstOut, d).uninit, false, `${d}: no extent unwritten`);
    }
  };

  it('copies a tree directly (-r): fragmented, sparse, odd-size and nested files and a 300-entry directory; metadata only over the host link', () => {
    const out = join(dir, 'out-direct.ext4');
    const srcOut = join(dir, 'src-after.ext4');
    const r = runFileCopy({ topology, src: 'sda', srcPath: '/data', dst: 'sdb', dstPath: '/backup/data', via: 'dc-buffer', seed: 1, recursive: true, force: false, nowSec: 1_800_000_000, images: [imageOf(`sda=${srcImg}`), imageOf(`sdb=${dstImg}`)], saves: [saveOf(`sdb=${out}`), saveOf(`sda=${srcOut}`)] });
    assert.equal(r.verified, true, JSON.stringify(r.checks.filter((c) => !c.verified)));
    assert.equal(r.files, 305);
    assert.equal(r.directories, 5);
    assert.ok(r.runs > 300, `${r.runs} runs (the fragmented file alone has many)`);
    assert.ok(r.dataBytes < r.bytes, 'the sparse file moves only its data');
    // Host link: metadata and commands only; the data stays in the box.
    const link = r.hostLink.upstreamPayloadBytes + r.hostLink.downstreamPayloadBytes;
    assert.ok(link < r.dataBytes * 0.2, `host link ${link} B for ${r.dataBytes} B of data`);
    assert.ok(r.metadata.readBytes > 0 && r.metadata.writtenBytes > 0);
    judge(out, [['/data/odd.bin', '/backup/data/odd.bin'], ['/data/sparse.bin', '/backup/data/sparse.bin'], ['/data/frag.bin', '/backup/data/frag.bin'], ['/data/nested/a/b/deep.txt', '/backup/data/nested/a/b/deep.txt'], ['/data/many/f299', '/backup/data/many/f299']]);
    assert.equal(e2fsck(srcOut).status, 0);
    // ls reads the copy back over the fabric.
    const ls = runListing({ topology, device: 'sda', path: '/backup/data', seed: 1, images: [imageOf(`sda=${out}`)] });
    assert.deepEqual(ls.entries.map((e) => e.name), ['frag.bin', 'many', 'nested', 'odd.bin', 'sparse.bin']);
    // The destination allocates the fragmented file's blocks afresh: few extents where the source had many.
    assert.ok(ls.entries.find((e) => e.name === 'frag.bin')!.extents.length >= 1);
  });

  it('is deterministic: the same copy with the same seed gives the same report', () => {
    const once = () => JSON.stringify(runFileCopy({ topology, src: 'sda', srcPath: '/data/nested', dst: 'sdb', dstPath: '/n', via: 'dc-buffer', seed: 7, recursive: true, force: false, nowSec: 1_800_000_000, images: [imageOf(`sda=${srcImg}`), imageOf(`sdb=${dstImg}`)] }));
    assert.equal(once(), once());
  });

  it('copies conventionally (--via host): same result, the data over the host link', () => {
    const out = join(dir, 'out-host.ext4');
    const r = runFileCopy({ topology, src: 'sda', srcPath: '/data/frag.bin', dst: 'sdb', dstPath: '/backup/frag.bin', via: 'host', seed: 1, recursive: false, force: false, nowSec: 1_800_000_000, images: [imageOf(`sda=${srcImg}`), imageOf(`sdb=${dstImg}`)], saves: [saveOf(`sdb=${out}`)] });
    assert.equal(r.verified, true);
    assert.ok(r.hostLink.upstreamPayloadBytes >= r.dataBytes && r.hostLink.downstreamPayloadBytes >= r.dataBytes);
    judge(out, [['/data/frag.bin', '/backup/frag.bin']]);
  });

  it('a move that fails (a bad source block) leaves both images clean and the destination reserved but empty', () => {
    const out = join(dir, 'out-fail.ext4');
    const first = Number(/\d+\s*-\s*\d+\s+(\d+)/.exec(extentsOf(srcImg, '/data/odd.bin').text.split('\n').find((l) => /^\s*0\/\s*0/.test(l))!)![1]);
    const lba = first * 8 + 64; // 512-byte blocks: inside the file's first extent
    assert.throws(
      () => runFileCopy({ topology, src: 'sda', srcPath: '/data/odd.bin', dst: 'sdb', dstPath: '/backup/odd.bin', via: 'dc-buffer', seed: 1, recursive: false, force: false, nowSec: 1_800_000_000, images: [imageOf(`sda=${srcImg}`), imageOf(`sdb=${dstImg}`)], saves: [saveOf(`sdb=${out}`)], mediaErrors: [{ device: 'sda', lba }] }),
      (e: unknown) => e instanceof DconnectError && e.code === 'DEVICE_ERROR',
    );
    assert.equal(e2fsck(out).status, 0, e2fsck(out).out);
    assert.equal(dump(out, '/backup/odd.bin').length, 0, 'nothing readable: never stale data');
    assert.equal(extentsOf(out, '/backup/odd.bin').uninit, true);
  });

  it('a range copy of a whole image (dd between drives) with --image and --save: the saved drive is clean and identical', () => {
    const out = join(dir, 'out-range.ext4');
    const r = spawnSync(process.execPath, [CLI, 'copy', 'sda', 'sdb', '--length', '64MiB', '--image', `sda=${srcImg}`, '--save', `sdb=${out}`, '--set', 'ssd.capacityBytes=128MiB', '--json'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.verified, true);
    assert.equal(j.sha256, createHash('sha256').update(new Uint8Array(readFileSync(srcImg))).digest('hex'), 'verified against the image, not a seeded pattern');
    assert.equal(e2fsck(out).status, 0);
    assert.ok(same(dump(out, '/data/frag.bin'), dump(srcImg, '/data/frag.bin')));
  });

  it('the CLI: copy with --image/--save and --json, ls, and refusals before any work', () => {
    const out = join(dir, 'out-cli.ext4');
    const run = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
    const r = run(['copy', 'sda:/data/odd.bin', 'sdb:/backup/', '--image', `sda=${srcImg}`, '--image', `sdb=${dstImg}`, '--save', `sdb=${out}`, '--set', 'ssd.capacityBytes=128MiB', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.files, 1);
    assert.equal(j.verified, true);
    assert.equal(j.list[0].dstPath, '/backup/odd.bin');
    judge(out, [['/data/odd.bin', '/backup/odd.bin']]);
    const ls = run(['ls', 'sda:/data', '--image', `sda=${srcImg}`, '--set', 'ssd.capacityBytes=128MiB']);
    assert.equal(ls.status, 0, ls.stderr);
    assert.match(ls.stdout, /frag\.bin\s+file\s+6291456/);
    // Refusals: an image larger than the drive; an existing file without --force; nothing saved.
    const none = join(dir, 'never.ext4');
    const big = run(['copy', 'sda:/data/odd.bin', 'sdb:/x', '--image', `sda=${srcImg}`, '--save', `sdb=${none}`, '--set', 'ssd.capacityBytes=32MiB']);
    assert.equal(big.status, 2);
    assert.match(big.stderr, /BAD_IMAGE.*larger than the drive/);
    const exists = run(['copy', 'sda:/data/odd.bin', 'sdb:/backup/old.txt', '--image', `sda=${srcImg}`, '--image', `sdb=${dstImg}`, '--save', `sdb=${none}`, '--set', 'ssd.capacityBytes=128MiB']);
    assert.equal(exists.status, 2);
    assert.match(exists.stderr, /FS_EXISTS[\s\S]*--force/);
    assert.equal(existsSync(none), false, 'a refused copy saves nothing');
  });

  it('the CLI at --granularity burst: the copy says so, and the saved image is judged as at per TLP', () => {
    const out = join(dir, 'out-burst.ext4');
    const args = ['copy', 'sda:/data/nested', 'sdb:/backup/nested', '-r', '--image', `sda=${srcImg}`, '--image', `sdb=${dstImg}`, '--set', 'ssd.capacityBytes=128MiB'];
    const tlp = spawnSync(process.execPath, [CLI, ...args, '--json'], { encoding: 'utf8' });
    const r = spawnSync(process.execPath, [CLI, ...args, '--save', `sdb=${out}`, '--granularity', 'burst', '--burst-bytes', '16KiB', '--json'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    const t = JSON.parse(tlp.stdout);
    assert.deepEqual(j.granularity, { mode: 'burst', burstBytes: 16384, relativeErrorBound: 0.03 });
    assert.deepEqual(t.granularity, { mode: 'tlp' });
    assert.equal(j.verified, true);
    assert.ok(Math.abs(j.simulatedSeconds / t.simulatedSeconds - 1) <= j.granularity.relativeErrorBound, `${j.simulatedSeconds} s against per-TLP's ${t.simulatedSeconds} s`);
    judge(out, [['/data/nested/top.bin', '/backup/nested/top.bin'], ['/data/nested/a/b/deep.txt', '/backup/nested/a/b/deep.txt']]);
    const text = spawnSync(process.execPath, [CLI, ...args, '--granularity', 'burst'], { encoding: 'utf8' });
    assert.match(text.stdout, /granularity burst \(bursts of up to 65536 B; simulated time within 3% of per-TLP's on the checked matrix\)/);
  });
});
