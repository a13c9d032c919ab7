/**
 * Moves with a NIC (issue 9): serve (drive -> client), ingest (client -> drive) and pipeline (client ->
 * NIC -> client), direct through the DC buffer and conventional through host memory, each verified at
 * the far end; where the payload travels (the host link once each way, or only descriptors, headers
 * and commands); determinism; bad requests refused before anything moves; offsets that move the right
 * bytes and write only the destination range; and a NIC that never missed a frame. `npm test` runs
 * this file a second time over the bytes-mode channel (test/helpers/bytes-mode.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DconnectError } from '../../src/core/errors.js';
import { SparseMemory, patternBytes } from '../../src/devices/sparse-memory.js';
import { connectBytes } from '../../src/expether/bytes-channel.js';
import { BT_FRAME_HEADER_BYTES, BT_TYPE, decodeBtHeader } from '../../src/net/block-transfer.js';
import { linkName } from '../../src/runtime/capture.js';
import { patternSeedOf } from '../../src/runtime/moves.js';
import { runNicMove, type NicMoveRequest, type NicMoveResult } from '../../src/runtime/nic-moves.js';
import { connectCable, type ConnectFn } from '../../src/topology/builder.js';
import { loadTopology } from '../../src/topology/load.js';

const KiB = 1024;
const MiB = 1 << 20;
/** paper-2012-nic's frame payload and drive command size. */
const FRAME = 1024;
const CHUNK = 128 * KiB;
/** The channel every fabric of this run uses unless a test names one (the second pass: bytes). */
const channel: ConnectFn = process.env.DCONNECT_TEST_CHANNEL === 'bytes' ? connectBytes : connectCable;

type Over = Partial<NicMoveRequest> & { hostLanes?: 1 | 8 };

function move(over: Over = {}): NicMoveResult {
  const { hostLanes, ...rest } = over;
  const topology = loadTopology('paper-2012-nic');
  if (hostLanes) topology.host.link.lanes = hostLanes;
  return runNicMove({ topology, src: 'sda', dst: 'net:client0', lengthBytes: 2 * MiB, via: 'dc-buffer', seed: 7, ...rest });
}

/** SSD stores the test can read afterwards, by slot name (`box0.slot1`). */
function stores(): { storeFor: NicMoveRequest['storeFor']; of: Map<string, SparseMemory> } {
  const of = new Map<string, SparseMemory>();
  return {
    of,
    storeFor: (slot, capacity) => {
      const m = new SparseMemory(slot, capacity);
      of.set(slot, m);
      return m;
    },
  };
}

/** A channel that also hands every station frame crossing cable `link` (bytes, and the sending port's name) to `seen`. */
function tap(link: string, seen: (from: string, frame: Uint8Array) => void): ConnectFn {
  return (a, b, ns, name) => {
    const ch = channel(a, b, ns, name);
    if (linkName(a.name, b.name) !== link) return ch;
    const carry = ch.carry.bind(ch);
    ch.carry = (from, frame, serializedInPs) => {
      if (frame.payload instanceof Uint8Array) seen(from.name, frame.payload.slice());
      carry(from, frame, serializedInPs);
    };
    return ch;
  };
}

const KINDS = [
  { kind: 'serve', src: 'sda', dst: 'net:client0' },
  { kind: 'ingest', src: 'net:client0', dst: 'sdb' },
  { kind: 'pipeline', src: 'net:client0', dst: 'net:client1' },
] as const;

function checkCommon(r: NicMoveResult, k: (typeof KINDS)[number], via: 'dc-buffer' | 'host', lanes: number): void {
  const what = `${k.kind} ${via} x${lanes}`;
  assert.equal(r.kind, k.kind, what);
  assert.equal(r.mode, via === 'dc-buffer' ? 'direct' : 'conventional', what);
  assert.equal(r.verified, true, `${what}: the far end differs from the source`);
  assert.equal(r.bytes, 2 * MiB);
  assert.equal(r.hostLanes, lanes);
  assert.equal(r.nic, 'nic0');
  assert.equal(r.relay, via === 'dc-buffer' ? 'dcbuf0' : 'host memory');
  assert.equal(r.frames, (2 * MiB) / FRAME);
  assert.equal(r.commands, k.kind === 'pipeline' ? 0 : (2 * MiB) / CHUNK, what);
  assert.ok(r.simulatedSeconds > 0 && r.mbPerSec > 0 && r.events > 0);
  // The NIC neither missed a frame (its receive FIFO never overflowed) nor met a bad descriptor.
  const nic = r.trace['nic.box0.slot3'];
  assert.equal(nic.rxMissed, 0, `${what}: rxMissed`);
  assert.equal(nic.badDescriptors, 0, `${what}: badDescriptors`);
  assert.equal(nic.dmaErrors, 0, `${what}: dmaErrors`);
  // The clients: the sender sent every byte, the receiver took every byte, nobody saw a stray frame.
  for (const c of ['client0', 'client1']) assert.equal(r.trace[`client.${c}`].badFrames, 0, `${what}: ${c} badFrames`);
  if (k.src.startsWith('net:')) assert.equal(r.trace['client.client0'].txPayloadBytes, r.bytes, what);
  if (k.dst.startsWith('net:')) assert.equal(r.trace[`client.${k.dst.slice(4)}`].rxPayloadBytes, r.bytes, what);
  if (k.kind === 'serve') {
    assert.equal(r.trace['ssd.box0.slot0'].bytesRead, r.bytes, what);
    assert.ok(nic.txFrames >= r.frames, what);
  }
  if (k.kind === 'ingest') {
    assert.equal(r.trace['ssd.box0.slot1'].bytesWritten, r.bytes, what);
    assert.ok(nic.rxFrames >= r.frames, what);
  }
  if (k.kind === 'pipeline') assert.ok(nic.rxFrames >= r.frames && nic.txFrames >= r.frames, what);

  const up = r.hostLink.upstreamPayloadBytes;
  const down = r.hostLink.downstreamPayloadBytes;
  const relayDown = r.trace['box0.slot2.link.downstream'].MWrPayloadBytes;
  const relayUp = r.trace['box0.slot2.link.upstream'].CplDPayloadBytes;
  if (via === 'dc-buffer') {
    // Direct: the payload is written into the DC buffer and read out of it once, and never crosses the
    // host link; only descriptors, split-off headers, drive commands and completions do (< 10%).
    assert.ok(up < 0.1 * r.bytes, `${what}: upstream ${up} B of ${r.bytes}`);
    assert.ok(down < 0.1 * r.bytes, `${what}: downstream ${down} B of ${r.bytes}`);
    assert.equal(relayDown, r.bytes, `${what}: payload written into the DC buffer`);
    assert.equal(relayUp, r.bytes, `${what}: payload read out of the DC buffer`);
  } else {
    // Conventional: the payload crosses the host link once each way (into host memory, then out of it),
    // not more: what is above the moved bytes is the same descriptors, headers and commands.
    assert.ok(up >= r.bytes && up < 1.2 * r.bytes, `${what}: upstream ${up} B of ${r.bytes}`);
    assert.ok(down >= r.bytes && down < 1.2 * r.bytes, `${what}: downstream ${down} B of ${r.bytes}`);
    assert.equal(relayDown, 0, `${what}: the DC buffer is not used`);
    assert.equal(relayUp, 0, `${what}: the DC buffer is not used`);
  }
}

for (const lanes of [8, 1] as const) {
  test(`every NIC move, direct and conventional, verified at host link x${lanes}`, () => {
    for (const k of KINDS) {
      const direct = move({ src: k.src, dst: k.dst, via: 'dc-buffer', hostLanes: lanes });
      const conventional = move({ src: k.src, dst: k.dst, via: 'host', hostLanes: lanes });
      checkCommon(direct, k, 'dc-buffer', lanes);
      checkCommon(conventional, k, 'host', lanes);
      // Both modes move the same data frames and drive commands; only the relay differs.
      assert.equal(conventional.frames, direct.frames);
      assert.equal(conventional.commands, direct.commands);
      if (lanes === 1) {
        // At x1 the host link (250 MB/s each way) carries the conventional move's payload and limits it;
        // the direct move does not use it for data.
        assert.ok(direct.mbPerSec > 1.5 * conventional.mbPerSec, `${k.kind} x1: direct ${direct.mbPerSec} vs conventional ${conventional.mbPerSec} MB/s`);
        assert.ok(conventional.hostLink.upstreamUtilization > 0.5 || conventional.hostLink.downstreamUtilization > 0.5, `${k.kind} x1 conventional: the host link should be the busy part`);
      }
    }
  });
}

test('a direct move does not depend on the host link: x1 and x8 within 10%', () => {
  for (const k of KINDS) {
    const x8 = move({ src: k.src, dst: k.dst, lengthBytes: MiB, hostLanes: 8 });
    const x1 = move({ src: k.src, dst: k.dst, lengthBytes: MiB, hostLanes: 1 });
    assert.ok(x1.mbPerSec > 0.9 * x8.mbPerSec, `${k.kind}: x1 ${x1.mbPerSec} vs x8 ${x8.mbPerSec} MB/s`);
  }
});

test('a partial last chunk, one command in flight, and the smallest relays verify', () => {
  const cases: Over[] = [
    { src: 'sda', dst: 'net:client0', lengthBytes: MiB + 5 * KiB, depth: 1 },
    { src: 'net:client0', dst: 'sdb', lengthBytes: MiB + 5 * KiB, depth: 1, via: 'host' },
    { src: 'net:client0', dst: 'net:client1', lengthBytes: 64 * KiB, chunkBytes: KiB, depth: 1 },
    { src: 'net:client0', dst: 'sdb', lengthBytes: 256 * KiB, chunkBytes: 4 * KiB, depth: 63 },
    { src: 'sda', dst: 'net:client1', lengthBytes: KiB, via: 'host' },
  ];
  for (const c of cases) {
    const r = move(c);
    assert.equal(r.verified, true, JSON.stringify(c));
    assert.equal(r.trace['nic.box0.slot3'].rxMissed, 0, JSON.stringify(c));
  }
});

test('same seed gives byte-identical JSON; another seed moves other bytes, verified the same', () => {
  const run = (seed: number) => {
    const s = stores();
    const r = move({ src: 'net:client0', dst: 'sdb', lengthBytes: MiB, seed, storeFor: s.storeFor });
    return { json: JSON.stringify(r), r, bytes: s.of.get('box0.slot1')!.read(0, MiB) };
  };
  const a = run(7);
  const b = run(7);
  assert.equal(a.json, b.json);
  assert.deepEqual(a.bytes, b.bytes);
  const c = run(8);
  assert.equal(c.r.verified, true);
  assert.notDeepEqual(c.bytes, a.bytes, 'another seed should move other data');
  // A pipeline and a serve are deterministic too (the serve through host memory, at x1).
  for (const o of [{ src: 'net:client0', dst: 'net:client1', lengthBytes: MiB }, { src: 'sda', dst: 'net:client1', lengthBytes: MiB, via: 'host', hostLanes: 1 }] as Over[]) {
    assert.equal(JSON.stringify(move(o)), JSON.stringify(move(o)), JSON.stringify(o));
  }
});

test('the bytes-mode channel gives the default channel\'s results exactly', () => {
  for (const k of KINDS) {
    const plain = JSON.stringify(move({ src: k.src, dst: k.dst, lengthBytes: MiB, connect: connectCable }));
    const bytes = JSON.stringify(move({ src: k.src, dst: k.dst, lengthBytes: MiB, connect: connectBytes }));
    assert.equal(bytes, plain, k.kind);
  }
});

test('serving from sda:1MiB sends the bytes at 1 MiB, in order, in frames of the frame payload', () => {
  const s = stores();
  const length = MiB;
  const received = new Uint8Array(length);
  let frames = 0;
  let credits = 0;
  const r = move({
    src: 'sda',
    srcOffset: MiB,
    dst: 'net:client0',
    lengthBytes: length,
    storeFor: s.storeFor,
    connect: tap('client0-net.box0.slot3', (from, f) => {
      const h = decodeBtHeader(f);
      if (from === 'client0') {
        assert.equal(h.type, BT_TYPE.CREDIT, 'the receiving client sends only credit');
        credits++;
        return;
      }
      assert.equal(h.type, BT_TYPE.DATA);
      assert.equal(h.seq, frames, 'frames arrive in order');
      assert.equal(h.value, FRAME);
      received.set(f.subarray(BT_FRAME_HEADER_BYTES), h.seq * FRAME);
      frames++;
    }),
  });
  assert.equal(r.verified, true);
  assert.equal(r.srcOffset, MiB);
  assert.equal(frames, length / FRAME);
  assert.ok(credits > 0);
  // What the client got is sda's range at 1 MiB as the drive holds it, which is not the range at 0.
  const sda = s.of.get('box0.slot0')!;
  assert.deepEqual(received, sda.read(MiB, length));
  const atZero = new Uint8Array(length);
  patternBytes(patternSeedOf(7, 0), 0, atZero);
  assert.notDeepEqual(received, atZero);
  assert.deepEqual(sda.read(0, MiB), new Uint8Array(MiB), 'nothing was seeded or written below the range');
});

test('ingest at a destination offset writes only the destination range', () => {
  const s = stores();
  const off = MiB + 4 * KiB;
  const length = MiB;
  const r = move({ src: 'net:client0', dst: 'sdb', dstOffset: off, lengthBytes: length, storeFor: s.storeFor });
  assert.equal(r.verified, true);
  assert.equal(r.dstOffset, off);
  const sdb = s.of.get('box0.slot1')!;
  const want = new Uint8Array(length);
  patternBytes(patternSeedOf(7, 0), 0, want);
  assert.deepEqual(sdb.read(off, length), want, 'the client stream lands at the offset');
  assert.deepEqual(sdb.read(0, off), new Uint8Array(off), 'below the range stays zero');
  assert.deepEqual(sdb.read(off + length, 2 * MiB), new Uint8Array(2 * MiB), 'above the range stays zero');
  assert.equal(r.trace['ssd.box0.slot1'].bytesWritten, length);
  // Only the pages the range touches were written (64 KiB pages; the range starts inside one).
  assert.ok(sdb.residentBytes() <= length + 64 * KiB, `resident ${sdb.residentBytes()}`);
  assert.equal(s.of.get('box0.slot0')!.residentBytes(), 0, 'sda was not touched');
});

test('bad requests fail with a named error before anything runs', () => {
  const refused = (over: Over, code: string, message: RegExp, hint?: RegExp) =>
    assert.throws(
      () => move(over),
      (e: unknown) => {
        assert.ok(e instanceof DconnectError, `${JSON.stringify(over)}: ${String(e)}`);
        assert.equal(e.code, code, `${JSON.stringify(over)}: ${e.message}`);
        assert.match(e.message, message);
        if (hint) assert.match(e.hint ?? '', hint);
        return true;
      },
    );
  refused({ lengthBytes: MiB + 100 }, 'UNALIGNED', /not a positive multiple of the 1024-byte frame payload/, /multiple of 1024/);
  refused({ lengthBytes: 0 }, 'UNALIGNED', /length 0/);
  refused({ chunkBytes: 3 * 512 }, 'UNALIGNED', /chunk size 1536/);
  refused({ src: 'net:client0', dst: 'net:client1', chunkBytes: 0 }, 'BAD_OPTION', /chunk size 0/);
  refused({ srcOffset: 256e9 }, 'OUT_OF_RANGE', /beyond sda's capacity/, /offset \+ length <= 256000000000/);
  refused({ src: 'net:client0', dst: 'sdb', dstOffset: 256e9 - MiB }, 'OUT_OF_RANGE', /destination range/);
  refused({ srcOffset: -4096 }, 'OUT_OF_RANGE', /source range/);
  refused({ srcOffset: 100 }, 'UNALIGNED', /source offset 100/, /multiple of 512/);
  refused({ dst: 'net:nobody' }, 'UNKNOWN_DEVICE', /no client 'nobody'/, /net:client0, net:client1/);
  refused({ src: 'net:nobody', dst: 'sdb' }, 'UNKNOWN_DEVICE', /no client 'nobody'/, /net:client0, net:client1/);
  refused({ src: 'net:client0', dst: 'net:client0' }, 'OVERLAP', /both client client0/);
  refused({ src: 'net:', dst: 'sdb' }, 'BAD_OPTION', /names no client/, /net:client0/);
  refused({ src: 'net:client0', srcOffset: 4096, dst: 'sdb' }, 'BAD_OPTION', /net:client0 is a client: it takes no offset/);
  refused({ src: 'sda', dst: 'sdb' }, 'BAD_OPTION', /needs a client at one end/);
  refused({ src: 'sdz' }, 'UNKNOWN_DEVICE', /no block device 'sdz'/, /sda .*sdb/);
  refused({ src: 'dcbuf0' }, 'UNKNOWN_DEVICE', /no block device 'dcbuf0'/);
  refused({ depth: 0 }, 'BAD_OPTION', /depth 0/, /1 to 64/);
  // The same admission as moves between drives: a serve's drive commands fit the NVMe queues (one entry stays empty).
  refused({ depth: 64 }, 'BAD_OPTION', /depth 64 needs NVMe queues of at least 65 entries/, /--depth 63 or less/);
  refused({ lengthBytes: 96 * MiB, chunkBytes: 32 * MiB, depth: 3 }, 'BAD_OPTION', /relay space in the 67108864-byte DC buffer/);
  // A topology without a NIC: the hint names the preset that has one.
  assert.throws(
    () => runNicMove({ topology: loadTopology('paper-2012'), src: 'net:client0', dst: 'sdb', lengthBytes: MiB, via: 'dc-buffer', seed: 1 }),
    (e: unknown) => e instanceof DconnectError && e.code === 'UNKNOWN_DEVICE' && /paper-2012-nic/.test(e.hint ?? ''),
  );
  // Two clients of one name: the topology is refused, not crashed on.
  const dup = loadTopology('paper-2012-nic');
  const slot = dup.boxes[0].slots[3];
  assert.ok(slot.kind === 'nic');
  slot.clients = [{ name: 'c' }, { name: 'c' }];
  assert.throws(
    () => runNicMove({ topology: dup, src: 'sda', dst: 'net:c', lengthBytes: MiB, via: 'dc-buffer', seed: 1 }),
    (e: unknown) => e instanceof DconnectError && e.code === 'BAD_TOPOLOGY' && /two clients named 'c'/.test(e.message),
  );
});
