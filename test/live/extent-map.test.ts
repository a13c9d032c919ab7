/**
 * The drive file's extent map (live/extent-map.ts): what a box reports for NBD's base:allocation.
 * Holes are what was never written (a fresh file at once; a file from an earlier run by reading it),
 * data what a write touched, and an answer is bounded in what it reads and lists.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, openSync, rmSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileStore } from '../../src/live/file-store.js';
import { EXTENT_DATA, EXTENT_HOLE, GRANULE_BYTES, MAX_EXTENTS, SCAN_BYTES, TrackedStore } from '../../src/live/extent-map.js';

const MiB = 1 << 20;
const G = GRANULE_BYTES;

describe('TrackedStore: holes and data of a drive file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dconnect-extents-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('a fresh file is one hole; a write makes the granules it touches data, merged with their neighbours', () => {
    const s = new TrackedStore(new FileStore(join(dir, 'a.img'), 16 * MiB));
    assert.deepEqual(s.extents(0, 16 * MiB), [{ lengthBytes: 16 * MiB, state: EXTENT_HOLE }]);
    s.write(G + 512, new Uint8Array(512).fill(7)); // inside granule 1
    s.write(2 * G, new Uint8Array(G).fill(1)); // granule 2
    assert.deepEqual(s.extents(0, 16 * MiB), [
      { lengthBytes: G, state: EXTENT_HOLE },
      { lengthBytes: 2 * G, state: EXTENT_DATA },
      { lengthBytes: 16 * MiB - 3 * G, state: EXTENT_HOLE },
    ]);
    // A range inside granules is cut at its own ends.
    assert.deepEqual(s.extents(G + 4096, 8192), [{ lengthBytes: 8192, state: EXTENT_DATA }]);
    s.close();
  });

  it('a file written by an earlier run is read when asked about: zeros are holes, the rest data, and the answer is remembered', () => {
    const path = join(dir, 'b.img');
    new FileStore(path, 8 * MiB).close();
    const fd = openSync(path, 'r+');
    writeSync(fd, new Uint8Array(4096).fill(9), 0, 4096, 3 * G);
    closeSync(fd);
    const s = new TrackedStore(new FileStore(path, 8 * MiB));
    const expect = [
      { lengthBytes: 3 * G, state: EXTENT_HOLE },
      { lengthBytes: G, state: EXTENT_DATA },
      { lengthBytes: 8 * MiB - 4 * G, state: EXTENT_HOLE },
    ];
    assert.deepEqual(s.extents(0, 8 * MiB), expect);
    assert.deepEqual(s.extents(0, 8 * MiB), expect);
    assert.throws(() => s.extents(8 * MiB - 512, 1024), RangeError);
    s.close();
  });

  it('an answer reads at most SCAN_BYTES of unknown file and lists at most MAX_EXTENTS: it covers a prefix, never nothing', () => {
    const path = join(dir, 'c.img');
    const size = SCAN_BYTES + 8 * MiB;
    new FileStore(path, size).close();
    const fd = openSync(path, 'r+');
    writeSync(fd, new Uint8Array(1).fill(1), 0, 1, size - 1); // allocated, so nothing is known up front
    closeSync(fd);
    const s = new TrackedStore(new FileStore(path, size));
    const first = s.extents(0, size);
    assert.deepEqual(first, [{ lengthBytes: SCAN_BYTES, state: EXTENT_HOLE }]);
    assert.deepEqual(s.extents(SCAN_BYTES, 8 * MiB), [
      { lengthBytes: 8 * MiB - G, state: EXTENT_HOLE },
      { lengthBytes: G, state: EXTENT_DATA },
    ]);
    const fresh = new TrackedStore(new FileStore(join(dir, 'd.img'), (2 * MAX_EXTENTS + 4) * G));
    for (let g = 0; g < 2 * MAX_EXTENTS + 4; g += 2) fresh.write(g * G, new Uint8Array(512).fill(1));
    const many = fresh.extents(0, (2 * MAX_EXTENTS + 4) * G);
    assert.equal(many.length, MAX_EXTENTS);
    assert.equal(many.reduce((n, e) => n + e.lengthBytes, 0), MAX_EXTENTS * G);
    s.close();
    fresh.close();
  });

  it('a clean close keeps the map beside the file; it is trusted only while the file is unchanged', () => {
    const path = join(dir, 'e.img');
    const size = 4 * MiB;
    const a = new TrackedStore(new FileStore(path, size));
    a.write(5 * G, new Uint8Array(G)); // zeros, written: data (a scan would call it a hole)
    a.close();
    const kept = [
      { lengthBytes: 5 * G, state: EXTENT_HOLE },
      { lengthBytes: G, state: EXTENT_DATA },
      { lengthBytes: size - 6 * G, state: EXTENT_HOLE },
    ];
    const b = new TrackedStore(new FileStore(path, size));
    assert.deepEqual(b.extents(0, size), kept, 'the kept map, not a scan');
    b.close();
    const fd = openSync(path, 'r+');
    writeSync(fd, new Uint8Array([1]), 0, 1, 9 * G); // someone else writes the file
    closeSync(fd);
    const c = new TrackedStore(new FileStore(path, size));
    assert.deepEqual(c.extents(0, size), [
      { lengthBytes: 9 * G, state: EXTENT_HOLE },
      { lengthBytes: G, state: EXTENT_DATA },
      { lengthBytes: size - 10 * G, state: EXTENT_HOLE },
    ], 'the file changed: read afresh');
    c.close();
  });

  it('a write to the file by someone else while the store is open is noticed: the holes are read afresh', () => {
    const path = join(dir, 'f.img');
    const size = 2 * MiB;
    const s = new TrackedStore(new FileStore(path, size));
    assert.deepEqual(s.extents(0, size), [{ lengthBytes: size, state: EXTENT_HOLE }]);
    const fd = openSync(path, 'r+');
    writeSync(fd, new Uint8Array(4096).fill(3), 0, 4096, 7 * G); // behind the store's back
    closeSync(fd);
    s.write(0, new Uint8Array(512).fill(1)); // its own write after that must not hide it
    assert.deepEqual(s.extents(0, size), [
      { lengthBytes: G, state: EXTENT_DATA },
      { lengthBytes: 6 * G, state: EXTENT_HOLE },
      { lengthBytes: G, state: EXTENT_DATA },
      { lengthBytes: size - 8 * G, state: EXTENT_HOLE },
    ]);
    s.close();
  });

  it('reads of known holes are zeros without the file, and a write by anyone shows in the next turn\'s reads', async () => {
    const path = join(dir, 'h.img');
    const s = new TrackedStore(new FileStore(path, 4 * MiB));
    assert.deepEqual(s.read(G - 4096, 16384), new Uint8Array(16384), 'a fresh file reads as zeros');
    s.write(2 * G, new Uint8Array(4096).fill(5));
    assert.deepEqual(s.read(2 * G, 8192), Uint8Array.from({ length: 8192 }, (_, i) => (i < 4096 ? 5 : 0)), 'its own write is data at once');
    // Someone else writes where the map says hole: the next turn's reads see it.
    await new Promise((r) => setImmediate(r));
    const fd = openSync(path, 'r+');
    writeSync(fd, new Uint8Array(512).fill(9), 0, 512, 3 * G + 100);
    closeSync(fd);
    const back = s.read(3 * G, 1024);
    assert.deepEqual(back.subarray(100, 612), new Uint8Array(512).fill(9));
    assert.deepEqual(back.subarray(0, 100), new Uint8Array(100));
    s.close();
  });
});
