/**
 * The transfer engine's admission and parts (src/runtime/engine/): one pipeline check with the NVMe
 * queues' room, relay slots placed through the relay planner and carved without sharing, the
 * verification's comparison, a NIC move taking its relay from the planner like every other move, how a
 * transfer's parts end, and a NIC move as a library call (AbortSignal, verification progress, faults).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DconnectError } from '../../src/core/errors.js';
import { DcManager, type BlockDevice } from '../../src/host/dc/manager.js';
import type { Relay } from '../../src/host/dc/host-device.js';
import { pipelineOf, RelayPlan } from '../../src/runtime/engine/plan.js';
import { verifyRange, verifyScratch, VERIFY_STEP_BYTES } from '../../src/runtime/engine/endpoints.js';
import { runNicMove } from '../../src/runtime/nic-moves.js';
import { TransferParts } from '../../src/runtime/engine/runner.js';
import { connectCable } from '../../src/topology/builder.js';
import * as lib from '../../src/index.js';
import { loadTopology } from '../../src/topology/load.js';

const MiB = 1 << 20;

function refused(fn: () => unknown, code: string, message: RegExp, hint?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof DconnectError, String(e));
    assert.equal(e.code, code);
    assert.match(e.message, message);
    if (hint) assert.match(e.hint ?? '', hint);
    return true;
  });
}

test('the pipeline: depth within 1..64 and within the NVMe queues, beside what else holds entries', () => {
  const t = loadTopology('paper-2012');
  assert.deepEqual(pipelineOf({ topology: t, depth: 3, chunkBytes: 4096 }), { depth: 3, chunk: 4096 });
  refused(() => pipelineOf({ topology: t, depth: 0 }), 'BAD_OPTION', /depth 0 is outside 1\.\.64/, /1 to 64/);
  const q = t.host.queueEntries;
  refused(() => pipelineOf({ topology: t, depth: q }), 'BAD_OPTION', new RegExp(`depth ${q} needs NVMe queues of at least ${q + 1} entries`), new RegExp(`--depth ${q - 1} or less`));
  refused(() => pipelineOf({ topology: t, depth: q - 3 }, { entries: 3, what: "NBD's 2 commands and the job's flush" }), 'BAD_OPTION', /beside NBD's 2 commands and the job's flush/, new RegExp(`--depth ${q - 4} or less`));
  assert.equal(pipelineOf({ topology: t, depth: q - 4 }, { entries: 3, what: 'x' }).depth, q - 4);
});

const dev = (name: string, box: string, slot: number): BlockDevice => ({ name, kind: 'ssd', bdf: '', box, slot, bar0: 0 }) as unknown as BlockDevice;
const buffer = (name: string, box: string, slot: number, busAddress: number, sizeBytes: number): Relay => ({ name, via: 'dc-buffer', device: name, box, slot, busAddress, sizeBytes });

test('relay slots: the planner picks, slots are carved in order, equal distances spread by load, room is checked', () => {
  const m = new DcManager();
  m.addRelay(buffer('dcbuf0', 'box0', 2, 0x1000_0000, 4 * MiB));
  m.addRelay(buffer('dcbuf1', 'box0', 3, 0x2000_0000, 4 * MiB));
  const sda = dev('sda', 'box0', 0);
  const sdb = dev('sdb', 'box0', 1);
  const hostSlots = (count: number, bytes: number) => Array.from({ length: count }, (_, i) => 0x100000 + i * bytes);
  const plan = new RelayPlan(m, hostSlots);
  const a = plan.place('dc-buffer', sda, sdb, 3, MiB);
  assert.deepEqual(a, { name: 'dcbuf0', box: 'box0', slots: [0x1000_0000, 0x1010_0000, 0x1020_0000] });
  assert.equal(plan.place('dc-buffer', sda, sdb, 3, MiB).name, 'dcbuf1', 'the less loaded at equal distance');
  const c = plan.place('dc-buffer', sda, sdb, 1, MiB);
  assert.deepEqual(c.slots, [0x1030_0000], 'after the first move\'s slots, never sharing them');
  refused(() => plan.place('dc-buffer', sda, sdb, 2, MiB), 'BAD_OPTION', /these moves need 5242880 bytes of relay slots, more than the relay space in the 4194304-byte DC buffer dcbuf1/, /smaller --chunk/);
  assert.deepEqual(plan.place('host', sda, sdb, 2, 4096), { name: 'host memory', slots: [0x100000, 0x101000] });
  refused(() => new RelayPlan(new DcManager(), hostSlots).place('dc-buffer', sda, sdb, 1, 4096), 'BAD_TOPOLOGY', /no DC buffer/, /--via host/);
});

test('the verification compares step by step, reports each step, and finds a byte that differs in the last', () => {
  const length = 2 * VERIFY_STEP_BYTES + 4096;
  const src = new Uint8Array(length).map((_, i) => i * 7);
  const dst = src.slice();
  const steps: number[] = [];
  const scratch = verifyScratch(length);
  const read = (b: Uint8Array) => (off: number, buf: Uint8Array) => buf.set(b.subarray(off, off + buf.length));
  assert.equal(verifyRange(length, read(src), read(dst), scratch, (off) => steps.push(off)), true);
  assert.deepEqual(steps, [0, VERIFY_STEP_BYTES, 2 * VERIFY_STEP_BYTES]);
  dst[length - 1] ^= 1;
  assert.equal(verifyRange(length, read(src), read(dst), scratch), false);
});

test("a NIC move takes its relay from the planner (distance, then load, then the drivers' order), not the NIC's box's buffer", () => {
  // sda and sdb with dcbuf0 in box0; the NIC with dcbuf1 in box1. Serving sda to a client crosses
  // the boxes either way (1 + 3 traversals through either buffer): the tie goes to the first found.
  const t = loadTopology('paper-2012-nic');
  const [ssdA, ssdB, buf, nic] = t.boxes[0].slots;
  t.boxes = [
    { name: 'box0', slots: [ssdA, ssdB, buf] },
    { name: 'box1', slots: [nic, { kind: 'dc-buffer' }] },
  ];
  const serve = runNicMove({ topology: t, src: 'sda', dst: 'net:client0', lengthBytes: MiB, via: 'dc-buffer', seed: 1 });
  assert.equal(serve.relay, 'dcbuf0');
  assert.equal(serve.verified, true);
  // With the NIC and a buffer in the drive's box, that buffer is nearer (1 + 1) than the other box's (3 + 3).
  t.boxes = [
    { name: 'box0', slots: [{ kind: 'dc-buffer' }] },
    { name: 'box1', slots: [ssdA, ssdB, buf, nic] },
  ];
  const ingest = runNicMove({ topology: t, src: 'net:client0', dst: 'sdb', lengthBytes: MiB, via: 'dc-buffer', seed: 1 });
  assert.equal(ingest.relay, 'dcbuf1');
  assert.equal(ingest.verified, true);
});

test('a transfer ends when every part is done (at that time), or at its first failure; each part reports once', () => {
  let now = 0;
  const ended: string[] = [];
  const parts = new TransferParts<string>({ now: () => now }, (p) => ended.push(p.failure ? `failed: ${p.failure.message}` : `done at ${p.endPs}`));
  const reports: ((r: string) => void)[] = [];
  for (let i = 0; i < 3; i++) parts.add((done) => reports.push(done));
  now = 5;
  reports[1]('b');
  reports[1]('again'); // a second report of a part is ignored
  reports[0]('a');
  assert.equal(parts.finished, false);
  assert.throws(() => parts.settled('the test move'), /the test move did not finish: the fabric went idle/);
  now = 9;
  reports[2]('c');
  assert.equal(parts.finished, true);
  assert.equal(parts.endPs, 9);
  assert.deepEqual(parts.settled('x'), ['a', 'b', 'c']);
  assert.deepEqual(ended, ['done at 9']);

  const failing = new TransferParts<number>({ now: () => 0 }, (p) => ended.push(`failed: ${p.failure!.message}`));
  failing.add((_done, fail) => fail(new Error('first')));
  failing.add((_done, fail) => fail(new Error('second')));
  assert.throws(() => failing.settled('x'), /first/);
  assert.deepEqual(ended.slice(1), ['failed: first'], 'told once, of the first failure');
});

test('a NIC move is a library call like the others: an AbortSignal stops it, the verification reports, faults are data', () => {
  const topology = loadTopology('paper-2012-nic');
  const req = { topology, src: 'sda', dst: 'net:client0', lengthBytes: 2 * MiB, via: 'dc-buffer' as const, seed: 5 };
  const pre = new AbortController();
  pre.abort();
  refused(() => lib.runNicMove({ ...req, signal: pre.signal }), 'ABORTED', /cancelled/);
  const stop = new AbortController();
  refused(() => lib.runNicMove({ ...req, lengthBytes: 256 * MiB, signal: stop.signal, onProgress: () => stop.abort() }), 'ABORTED', /cancelled/);
  const verifying: number[] = [];
  const late = new AbortController();
  refused(() => lib.runNicMove({ ...req, signal: late.signal, onVerify: (d) => (verifying.push(d), late.abort()) }), 'ABORTED', /cancelled/);
  assert.deepEqual(verifying, [0], 'the verification reported, then the abort landed');

  const lossy = lib.runNicMove({ ...req, faults: ['loss=1%'] });
  assert.equal(lossy.verified, true);
  assert.ok(lossy.faults && lossy.faults.lost > 0 && lossy.faults.frames > 0, JSON.stringify(lossy.faults));
  assert.equal(lib.runNicMove(req).faults, undefined);
  refused(() => lib.runNicMove({ ...req, faults: ['media-error=sda:0'] }), 'BAD_OPTION', /do not apply to moves through a NIC yet/);
  refused(() => lib.runNicMove({ ...req, faults: ['loss=1%'], connect: connectCable }), 'BAD_OPTION', /faults and a connect function together/);
});
