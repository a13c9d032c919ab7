import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DconnectError } from '../../src/core/errors.js';
import { isSuccess, type NvmeStatus } from '../../src/devices/nvme/nvme-defs.js';
import { FileStore } from '../../src/live/file-store.js';
import { NvmeSsd } from '../../src/devices/nvme-ssd.js';
import { boot } from '../../src/runtime/boot.js';
import { buildFabric } from '../../src/topology/builder.js';
import { loadTopology } from '../../src/topology/load.js';

const MiB = 1 << 20;

describe('FileStore: a drive in a sparse file, kept across restarts', () => {
  it('reserve() (up --preallocate) allocates the whole capacity on disk; the file still reads zeros', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dc-fs-'));
    try {
      const f = new FileStore(join(dir, 'd.img'), 8 << 20);
      assert.ok(statSync(f.path).blocks * 512 < 8 << 20, 'sparse before');
      f.reserve();
      assert.ok(statSync(f.path).blocks * 512 >= 8 << 20, 'reserved after');
      assert.equal(statSync(f.path).size, 8 << 20);
      assert.ok(f.read(4 << 20, 4096).every((b) => b === 0));
      f.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('sequential reads come from a read-ahead: the bytes the file holds, unchanged by later writes, and other writers seen at the next turn', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dc-fs-'));
    try {
      const path = join(dir, 'd.img');
      const bytes = new Uint8Array(4 * MiB).map((_, i) => (i * 7 + 3) & 0xff);
      writeFileSync(path, bytes);
      const f = new FileStore(path, 4 * MiB);
      const unit = 16384;
      const first = f.read(0, unit);
      const units = [first];
      for (let a = unit; a < 2 * MiB; a += unit) units.push(f.read(a, unit));
      units.forEach((u, i) => assert.deepEqual(u, bytes.subarray(i * unit, (i + 1) * unit), `unit ${i}`));
      // A write over what was read ahead: the next read sees it, and a unit handed out before keeps its bytes.
      const held = f.read(2 * MiB, unit);
      f.write(2 * MiB + 100, Uint8Array.of(1, 2, 3));
      assert.deepEqual(held, bytes.subarray(2 * MiB, 2 * MiB + unit), 'a unit handed out does not change');
      const again = f.read(2 * MiB + unit, unit);
      assert.deepEqual(again, bytes.subarray(2 * MiB + unit, 2 * MiB + 2 * unit));
      assert.deepEqual(f.read(2 * MiB + 100, 3), Uint8Array.of(1, 2, 3));
      // Another process writes the file between turns: the next turn's reads see it.
      f.read(3 * MiB, unit);
      await new Promise((r) => setImmediate(r));
      const other = new Uint8Array(unit).fill(0xee);
      const fd = openSync(path, 'r+');
      writeSync(fd, other, 0, unit, 3 * MiB + unit);
      closeSync(fd);
      assert.deepEqual(f.read(3 * MiB + unit, unit), other);
      f.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('creates a sparse file of the capacity, reads zeros where nothing was written, keeps writes across a reopen', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dconnect-store-'));
    try {
      const path = join(dir, 'sda.img');
      const s = new FileStore(path, 64 * MiB);
      assert.equal(statSync(path).size, 64 * MiB);
      assert.ok(statSync(path).blocks * 512 < MiB, 'sparse: no blocks for the holes');
      assert.deepEqual(s.read(10 * MiB, 8), new Uint8Array(8));
      s.write(MiB - 3, Uint8Array.from([1, 2, 3, 4, 5, 6]));
      s.close();
      const again = new FileStore(path, 64 * MiB);
      assert.deepEqual(again.read(MiB - 4, 8), Uint8Array.from([0, 1, 2, 3, 4, 5, 6, 0]));
      again.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses accesses outside the drive and a file of another size, naming both', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dconnect-store-'));
    try {
      const s = new FileStore(join(dir, 'a.img'), MiB);
      assert.throws(() => s.write(MiB - 1, new Uint8Array(2)), /access \[1048575, 1048577\) outside 0\.\.1048576/);
      assert.throws(() => s.read(-1, 1), RangeError);
      s.close();
      writeFileSync(join(dir, 'b.img'), new Uint8Array(100));
      assert.throws(
        () => new FileStore(join(dir, 'b.img'), MiB),
        (e: unknown) => e instanceof DconnectError && e.code === 'BAD_TOPOLOGY' && /holds 100 bytes, but the drive is declared with 1048576/.test(e.message),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads are views the caller may keep: a later read or write does not change an earlier read', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dconnect-store-'));
    try {
      const s = new FileStore(join(dir, 'a.img'), 4 * MiB);
      s.write(0, new Uint8Array(16384).fill(7));
      const first = s.read(0, 16384);
      const reads = Array.from({ length: 200 }, (_, i) => s.read(i * 16384, 16384)); // past one slab
      s.write(0, new Uint8Array(16384).fill(9));
      assert.ok(first.every((b) => b === 7));
      assert.ok(reads[0].every((b) => b === 7) && reads[1].every((b) => b === 0));
      assert.ok(s.read(0, 16384).every((b) => b === 9));
      s.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('flush runs off the event loop and completes through enter, after the call returns; close waits for it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dconnect-store-'));
    try {
      const s = new FileStore(join(dir, 'a.img'), MiB);
      let blocking: boolean | null = null;
      s.flush((ok) => (blocking = ok));
      assert.equal(blocking, true, 'without enter (paced), a flush completes within the call');
      const entered: (() => void)[] = [];
      s.enter = (fn) => entered.push(fn);
      s.write(0, Uint8Array.from([1, 2, 3]));
      let result: boolean | null = null;
      s.flush((ok) => (result = ok));
      assert.equal(entered.length, 0, 'not within the call');
      s.close(); // the descriptor stays open for the running fdatasync
      const end = Date.now() + 5000;
      while (entered.length === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 2));
      assert.equal(entered.length, 1, 'the completion entered once');
      assert.equal(result, null, 'done runs only inside the entered event');
      entered[0]();
      assert.equal(result, true);
      assert.throws(() => s.read(0, 1), /closed/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an SSD model on file stores: bytes written over the fabric and flushed are in the file after the fabric is gone', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dconnect-store-'));
    try {
      const t = loadTopology('paper-2012');
      t.ssd.capacityBytes = 16 * MiB;
      const stores: FileStore[] = [];
      const storeFor = (name: string, bytes: number) => {
        const s = new FileStore(join(dir, `${name}.img`), bytes);
        stores.push(s);
        return s;
      };
      const fabric = buildFabric(t, { seed: 1, storeFor });
      for (const s of stores) s.enter = (fn) => fabric.scheduler.schedule(0, fn);
      const host = boot(fabric, { maxTransferBytes: 131072 });
      const sdb = host.manager.lookup('sdb');
      const buf = host.allocator.alloc(8192);
      const bytes = Uint8Array.from({ length: 8192 }, (_, i) => (i * 7 + 1) & 0xff);
      fabric.rootComplex.memory.write(buf, bytes);
      let st: NvmeStatus | null = null;
      sdb.driver.submitIo('write', 2048, 16, [{ address: buf, lengthBytes: 8192 }], (s) => (st = s));
      fabric.scheduler.run({ stop: () => st !== null, maxEvents: 5e6 });
      assert.ok(st && isSuccess(st));
      let fl: NvmeStatus | null = null;
      sdb.driver.submitFlush((s) => (fl = s));
      // The flush's fdatasync completes on the event loop: run the model between its turns, bounded.
      const end = Date.now() + 5000;
      while (fl === null && Date.now() < end) {
        fabric.scheduler.run({ stop: () => fl !== null, maxEvents: 5e6 });
        await new Promise((r) => setImmediate(r));
      }
      assert.ok(fl && isSuccess(fl));
      for (const s of stores) s.close();
      const reopened = new FileStore(join(dir, 'box0.slot1.img'), 16 * MiB);
      assert.deepEqual(reopened.read(2048 * 512, 8192), bytes);
      reopened.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a write command reaches the file in runs of its 16 KiB units (a system call per 256 KiB), a unit over an unprogrammable block left out', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dconnect-store-'));
    try {
      const t = loadTopology('paper-2012');
      t.ssd.capacityBytes = 16 * MiB;
      const calls: string[] = [];
      class Counting extends FileStore {
        override write(addr: number, data: Uint8Array): void {
          calls.push(`write ${addr} ${data.length}`);
          super.write(addr, data);
        }
        override writev(addr: number, pieces: readonly Uint8Array[]): void {
          calls.push(`writev ${addr} ${pieces.map((p) => p.length).join('+')}`);
          super.writev(addr, pieces);
        }
      }
      const stores: FileStore[] = [];
      const fabric = buildFabric(t, { seed: 1, storeFor: (name, bytes) => (stores.push(new Counting(join(dir, `${name}.img`), bytes)), stores[stores.length - 1]) });
      const host = boot(fabric, { maxTransferBytes: MiB });
      const sdb = host.manager.lookup('sdb');
      const ssd = fabric.slots.find((x) => x.box === sdb.box && x.slot === sdb.slot)!.device as NvmeSsd;
      const buf = host.allocator.alloc(MiB);
      const bytes = Uint8Array.from({ length: MiB }, (_, i) => (i * 13 + 5) & 0xff);
      fabric.rootComplex.memory.write(buf, bytes);
      const write = (lba: number): NvmeStatus => {
        let st: NvmeStatus | null = null;
        sdb.driver.submitIo('write', lba, MiB / 512, [{ address: buf, lengthBytes: MiB }], (s) => (st = s));
        fabric.scheduler.run({ stop: () => st !== null, maxEvents: 5e6 });
        return st!;
      };
      const unit = t.ssd.streamUnitBytes;
      const units = (n: number) => Array(n).fill(unit).join('+');
      assert.ok(isSuccess(write(0)));
      assert.deepEqual(calls, [0, 1, 2, 3].map((i) => `writev ${i * 256 * 1024} ${units(16)}`), 'four runs of sixteen units');
      const file = stores.find((s) => s.path.endsWith('box0.slot1.img'))!;
      assert.deepEqual(file.read(0, MiB), bytes);
      // A block in unit 20 cannot be programmed: the run stops before it and starts again after it, unit 20 is not stored, and the command fails.
      calls.length = 0;
      ssd.badWriteBlocks.add(4 * MiB / 512 + (20 * unit) / 512 + 3);
      assert.ok(!isSuccess(write(4 * MiB / 512)));
      assert.deepEqual(calls, [`writev ${4 * MiB} ${units(16)}`, `writev ${4 * MiB + 16 * unit} ${units(4)}`, `writev ${4 * MiB + 21 * unit} ${units(16)}`, `writev ${4 * MiB + 37 * unit} ${units(16)}`, `writev ${4 * MiB + 53 * unit} ${units(11)}`]);
      assert.deepEqual(file.read(4 * MiB + 20 * unit, unit), new Uint8Array(unit), 'the refused unit was not stored');
      assert.deepEqual(file.read(4 * MiB + 21 * unit, unit), bytes.subarray(21 * unit, 22 * unit));
      for (const s of stores) s.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
