/**
 * Isolation (issue 12, item 4). Two hosts in different ExpEther groups on the same switches (preset
 * `two-hosts`): each enumerates only its own group's devices; both move data at once, each verified;
 * a move between the groups is refused with a clear error; a frame of the other group that reaches a
 * bridge is dropped and counted (`otherGroupFrames`). And Unsupported Requests: a device's DMA to an
 * address no window claims gets a UR completion (the command fails) and is counted where it was
 * decided; a write outside a BAR is counted (`writesOutsideBar`), not silently dropped.
 */
import type { DcBufferDevice } from '../../src/host/dc/manager.js';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DconnectError } from '../../src/core/errors.js';
import { Frame } from '../../src/ethernet/frame.js';
import { EXPETHER_ETHERTYPE, ExpEtherPdu } from '../../src/expether/pdu.js';
import { STATUS, type NvmeStatus } from '../../src/devices/nvme/nvme-defs.js';
import { DcBuffer } from '../../src/devices/dc-buffer.js';
import { NvmeSsd } from '../../src/devices/nvme-ssd.js';
import { Tlp } from '../../src/pcie/tlp.js';
import { boot } from '../../src/runtime/boot.js';
import { runCopy, runMoves, type MovesRequest } from '../../src/runtime/copy.js';
import { listDevices } from '../../src/runtime/devices.js';
import { buildFabric, type Fabric } from '../../src/topology/builder.js';
import { loadTopology } from '../../src/topology/load.js';

const MiB = 1 << 20;

const counters = (f: Fabric, name: string): Record<string, number> => f.trace.read(name);

test('each host enumerates only its own group\'s devices (listDevices per host, and both booted in one fabric)', () => {
  const t = loadTopology('two-hosts');
  const a = listDevices(t, 1);
  const b = listDevices(t, 1, 'host1');
  assert.deepEqual(
    a.map((d) => `${d.name}@${d.box}.slot${d.slot}${d.serial ? `:${d.serial}` : ''}`),
    ['sda@box0.slot0:OCZ-M84-0001', 'sdb@box0.slot1:OCZ-M84-0002', 'dcbuf0@box0.slot2'],
  );
  assert.deepEqual(
    b.map((d) => `${d.name}@${d.box}.slot${d.slot}${d.serial ? `:${d.serial}` : ''}`),
    ['sda@box0.slot3:OCZ-M84-0003', 'sdb@box0.slot4:OCZ-M84-0004', 'dcbuf0@box0.slot5'],
  );
  // Both in one fabric, one after the other: the same view each, and neither's drivers touched the other's drives.
  const f = buildFabric(t, 1);
  const ha = boot(f, { maxTransferBytes: MiB });
  const hb = boot(f, { maxTransferBytes: MiB, host: 'host1' });
  assert.equal(ha.host.name, 'host');
  assert.equal(hb.host.name, 'host1');
  assert.deepEqual(ha.manager.blockDevices().map((d) => d.serial), ['OCZ-M84-0001', 'OCZ-M84-0002']);
  assert.deepEqual(hb.manager.blockDevices().map((d) => d.serial), ['OCZ-M84-0003', 'OCZ-M84-0004']);
  // Each drive was brought up by exactly one host: two admin Identify + two Create I/O queue commands.
  for (const s of f.slots) if (s.device instanceof NvmeSsd) assert.equal(s.device.counters.commands, 4, `${s.box}.slot${s.slot} brought up once`);
  // The switches flooded frames to unknown MACs while they learned; the other group's bridges dropped them, counted.
  const other = (name: string) => counters(f, `bridge.${name}`).otherGroupFrames;
  assert.ok(other('host1') > 0, 'host1\'s bridge saw host\'s flooded frames');
  for (const s of f.slots) assert.ok(other(`${s.box}.slot${s.slot}`) > 0, `${s.box}.slot${s.slot} saw the other group's flooded frames`);
  assert.equal(counters(f, 'host.rootComplex').unsupported, 0);
  assert.equal(counters(f, 'host1.rootComplex').unsupported, 0);
});

const both = (fidelity: 'fast' | 'full', via: MovesRequest['via'] = 'dc-buffer'): MovesRequest => ({
  topology: loadTopology('two-hosts'),
  pairs: [
    { src: 'sda', srcOffset: 0, dst: 'sdb', dstOffset: 0 },
    { src: 'sda', srcOffset: 0, dst: 'sdb', dstOffset: 0, host: 'host1' },
  ],
  lengthBytes: 2 * MiB,
  via,
  seed: 6,
  fidelity,
});

test('both hosts move at once in one fabric, each within its group: both verified, each through its own group\'s buffer', () => {
  const r = runMoves(both('full'));
  assert.deepEqual(
    r.moves.map((m) => [m.host ?? 'host', m.src, m.dst, m.relay, m.verified]),
    [
      ['host', 'sda', 'sdb', 'dcbuf0', true],
      ['host1', 'sda', 'sdb', 'dcbuf0', true],
    ],
  );
  assert.notEqual(r.moves[0].sha256, r.moves[1].sha256, 'each source held its own data');
  assert.deepEqual(r.devices, { 'box0.slot0': 'sda', 'box0.slot1': 'sdb', 'box0.slot2': 'dcbuf0', 'box0.slot3': 'host1:sda', 'box0.slot4': 'host1:sdb', 'box0.slot5': 'host1:dcbuf0' });
  // Each group's data went through its own DC buffer: 2 MiB written into and read out of each.
  for (const slot of ['box0.slot2', 'box0.slot5']) {
    assert.equal(r.trace[`dcbuffer.${slot}`].bytesWritten, 2 * MiB, `${slot} relayed one move`);
    assert.equal(r.trace[`dcbuffer.${slot}`].bytesRead, 2 * MiB);
  }
  // Each drive did its own host's work only.
  assert.equal(r.trace['ssd.box0.slot0'].bytesRead, 2 * MiB);
  assert.equal(r.trace['ssd.box0.slot3'].bytesRead, 2 * MiB);
  assert.equal(r.trace['ssd.box0.slot1'].bytesWritten, 2 * MiB);
  assert.equal(r.trace['ssd.box0.slot4'].bytesWritten, 2 * MiB);
  for (const [name, c] of Object.entries(r.trace)) {
    if (name.startsWith('bridge.')) assert.equal(c.otherGroupFrames, 0, `${name}: the switches had learned every MAC by then (nothing flooded)`);
    if (name.startsWith('bridge.')) assert.equal(c.unsupportedRequests, 0, name);
  }
  // Run alone, host1's move takes as long as host's: the groups share the switches' links but do not contend here.
  assert.ok(Math.abs(r.moves[0].simulatedSeconds / r.moves[1].simulatedSeconds - 1) < 0.05, `${r.moves[0].simulatedSeconds} vs ${r.moves[1].simulatedSeconds}`);
});

test('a conventional move on the second host: its data crosses its own host link only', () => {
  const req = both('full', 'host');
  req.pairs = [req.pairs[1]];
  req.host = 'host1';
  const r = runMoves(req);
  assert.equal(r.moves[0].verified, true);
  assert.equal(r.moves[0].host, 'host1');
  assert.equal(r.moves[0].relay, 'host memory');
  assert.ok(r.trace['host1Link.downstream'].payloadBytes >= 2 * MiB, 'host1\'s link carried the data down');
  assert.ok(r.trace['host1Link.upstream'].payloadBytes >= 2 * MiB, 'and up');
  assert.equal(r.hostLink.downstreamPayloadBytes, r.trace['host1Link.downstream'].payloadBytes, 'hostLink reports the moving host\'s link');
  assert.equal(r.hostLink.upstreamPayloadBytes, r.trace['host1Link.upstream'].payloadBytes);
  assert.equal(r.trace['hostLink.downstream'].tlps, 0, 'the first host\'s link carried nothing');
  assert.equal(r.trace['hostLink.upstream'].tlps, 0);
  assert.equal(r.trace['host.rootComplex'].dmaWriteBytes, 0);
  assert.ok(r.trace['host1.rootComplex'].dmaWriteBytes >= 2 * MiB, 'the data landed in host1\'s memory');
});

test('the same seed gives the same two-host result (fast and full); fast and full agree that both verify', () => {
  const fast = JSON.stringify(runMoves(both('fast')));
  assert.equal(JSON.stringify(runMoves(both('fast'))), fast);
  const full = JSON.stringify(runMoves(both('full')));
  assert.equal(JSON.stringify(runMoves(both('full'))), full);
  const f = JSON.parse(fast) as { moves: { sha256: string; verified: boolean }[] };
  const g = JSON.parse(full) as { moves: { sha256: string; verified: boolean }[] };
  assert.deepEqual(
    f.moves.map((m) => [m.verified, m.sha256]),
    g.moves.map((m) => [m.verified, m.sha256]),
  );
});

test('a move between groups is refused with a clear error naming the device, its host and both groups', () => {
  const t = loadTopology('two-hosts');
  const base = { topology: t, srcOffset: 0, dstOffset: 0, lengthBytes: 2 * MiB, via: 'dc-buffer' as const, seed: 1 };
  // host's sda to host1's second drive, named by its serial.
  assert.throws(
    () => runCopy({ ...base, src: 'sda', dst: 'OCZ-M84-0004' }),
    (e: unknown) => {
      assert.ok(e instanceof DconnectError);
      assert.equal(e.code, 'UNKNOWN_DEVICE');
      assert.match(e.message, /the destination 'OCZ-M84-0004' is not a device of host 'host' \(ExpEther group 1\): it is host1's sdb \(serial OCZ-M84-0004\), in box0\.slot4, ExpEther group 2; a move cannot cross ExpEther groups/);
      assert.match(e.hint ?? '', /copy --host host1/);
      assert.match(e.hint ?? '', /--set boxes\.0\.slots\.4\.group=1/);
      return true;
    },
  );
  // The other way: host1 asked for host's first drive.
  assert.throws(() => runCopy({ ...base, host: 'host1', src: 'OCZ-M84-0001', dst: 'sdb' }), /the source 'OCZ-M84-0001' is not a device of host 'host1' \(ExpEther group 2\): it is host's sda/);
  // A name only the other host has: host1 has no sdc, host (given a third drive in group 1) has.
  const three = loadTopology('two-hosts');
  three.boxes[0].slots.push({ kind: 'ssd', serial: 'EXTRA' });
  assert.throws(() => runCopy({ ...base, topology: three, host: 'host1', src: 'sda', dst: 'sdc' }), /the destination 'sdc' is not a device of host 'host1' \(ExpEther group 2\): it is host's sdc, in box0\.slot6, ExpEther group 1/);
  // A name no host has keeps the plain error; an unknown host lists the hosts.
  assert.throws(() => runCopy({ ...base, src: 'sda', dst: 'sdz' }), /no block device 'sdz'/);
  assert.throws(() => runCopy({ ...base, host: 'nobody', src: 'sda', dst: 'sdb' }), (e: unknown) => e instanceof DconnectError && e.code === 'BAD_OPTION' && /no host 'nobody'/.test(e.message) && /host \(group 1\), host1 \(group 2\)/.test(e.hint ?? ''));
  // Within a group, by serial on its own host: fine.
  const ok = runCopy({ ...base, host: 'host1', src: 'OCZ-M84-0003', dst: 'OCZ-M84-0004' });
  assert.equal(ok.verified, true);
  assert.equal(ok.host, 'host1');
});

test('a frame of another group sent to a bridge\'s MAC through the switches is dropped and counted; it changes nothing', () => {
  const f = buildFabric(loadTopology('two-hosts'), 1);
  const h = boot(f, { maxTransferBytes: MiB });
  const buf = h.manager.devicesOf<DcBufferDevice>('dc-buffer')[0];
  const slot2 = f.slots[2];
  const host1 = f.hosts[1].bridge;
  assert.ok(slot2.device instanceof DcBuffer);
  const before = counters(f, 'bridge.box0.slot2');
  const dcBefore = counters(f, 'dcbuffer.box0.slot2');
  // From host1's port, VLAN 2: a memory write into group 1's DC buffer (at the address host gave it), and a bare ACK.
  const data = new Uint8Array(64).fill(0xab);
  const mwr = new ExpEtherPdu('tlp', 0, -1, Tlp.memWrite(0x0100, buf.bar0, data), null);
  host1.eth.send(new Frame(slot2.bridge.mac, host1.mac, host1.groupId, EXPETHER_ETHERTYPE, mwr, mwr.payloadBytes()));
  const ack = new ExpEtherPdu('ack', -1, 5, null, null);
  host1.eth.send(new Frame(slot2.bridge.mac, host1.mac, host1.groupId, EXPETHER_ETHERTYPE, ack, ack.payloadBytes()));
  f.scheduler.run({ maxEvents: 1_000_000 });
  const after = counters(f, 'bridge.box0.slot2');
  assert.equal(after.otherGroupFrames - before.otherGroupFrames, 2, 'both frames reached the bridge and were counted');
  assert.equal(after.tlpsFromEthernet, before.tlpsFromEthernet, 'no TLP got in');
  assert.equal(after.acksSent, before.acksSent, 'nothing answered');
  assert.deepEqual(counters(f, 'dcbuffer.box0.slot2'), dcBefore, 'the buffer saw nothing');
  assert.deepEqual(slot2.device.ddr.read(0, 64), new Uint8Array(64), 'and holds no byte of it');
  // The same frame in the bridge's own group from a MAC that is no member is dropped too (not counted as another group's).
  const stranger = new ExpEtherPdu('tlp', 0, -1, Tlp.memWrite(0x0100, buf.bar0, data), null);
  host1.eth.send(new Frame(slot2.bridge.mac, host1.mac, slot2.bridge.groupId, EXPETHER_ETHERTYPE, stranger, stranger.payloadBytes()));
  f.scheduler.run({ maxEvents: 1_000_000 });
  assert.equal(counters(f, 'bridge.box0.slot2').otherGroupFrames, after.otherGroupFrames);
  assert.equal(counters(f, 'bridge.box0.slot2').tlpsFromEthernet, after.tlpsFromEthernet);
  assert.deepEqual(slot2.device.ddr.read(0, 64), new Uint8Array(64));
});

/** Submits one NVMe command through a booted host's driver and runs until it completes. */
function io(f: Fabric, h: ReturnType<typeof boot>, op: 'read' | 'write', dev: string, address: number, bytes: number): NvmeStatus {
  let status: NvmeStatus | null = null;
  h.manager.lookup(dev).driver.submitIo(op, 0, bytes / 512, [{ address, lengthBytes: bytes }], (s) => (status = s));
  f.scheduler.run({ stop: () => status !== null, maxEvents: 10_000_000 });
  assert.ok(status, `${op} completed`);
  return status;
}

test('a device\'s DMA read of an address no window claims gets Unsupported Request: the command fails, the root complex counts it', () => {
  const f = buildFabric(loadTopology('paper-2012'), 1);
  const h = boot(f, { maxTransferBytes: MiB });
  const rc0 = counters(f, 'host.rootComplex').unsupported;
  // In the PCI hole, above every window enumeration assigned (they start at 0xC0000000 and span ~130 MiB).
  const unclaimed = 0xe000_0000;
  // An NVMe write DMA-reads its data: 4 KiB = 8 reads of MRRS 512 B, each answered UR by the root complex.
  const st = io(f, h, 'write', 'sda', unclaimed, 4096);
  assert.deepEqual(st, STATUS.DATA_TRANSFER_ERROR);
  assert.equal(counters(f, 'host.rootComplex').unsupported - rc0, 8);
  assert.equal(counters(f, 'ssd.box0.slot0').errors, 1);
  assert.equal(counters(f, 'ssd.box0.slot0').writes, 0, 'nothing was programmed');
  // Above installed DRAM (8 GiB: DRAM ends at 9 GiB with the hole): the same, with 64-bit addresses.
  assert.deepEqual(io(f, h, 'write', 'sda', 0x4_0000_0000, 4096), STATUS.DATA_TRANSFER_ERROR);
  assert.equal(counters(f, 'host.rootComplex').unsupported - rc0, 16);
  // An NVMe read DMA-writes: posted writes to nowhere are dropped by the root complex, counted (32 x 128 B); the drive cannot know.
  assert.deepEqual(io(f, h, 'read', 'sda', unclaimed, 4096), STATUS.SUCCESS);
  assert.equal(counters(f, 'host.rootComplex').unsupported - rc0, 16 + 32);
  // The driver and drive still work: a good write and read of host memory.
  const buf = h.allocator.alloc(4096);
  assert.deepEqual(io(f, h, 'write', 'sda', buf, 4096), STATUS.SUCCESS);
});

test('a device\'s DMA into its own slot\'s window is refused by its I/O bridge (UR decided and counted there)', () => {
  const f = buildFabric(loadTopology('paper-2012'), 1);
  const h = boot(f, { maxTransferBytes: MiB });
  const sda = h.manager.lookup('sda');
  // Past sda's 16 KiB BAR0, inside the 1 MiB window of its slot's downstream port: the slot's own bridge would send it back down.
  const own = sda.bar0 + 0x8000;
  const b0 = counters(f, 'bridge.box0.slot0').unsupportedRequests;
  assert.deepEqual(io(f, h, 'write', 'sda', own, 4096), STATUS.DATA_TRANSFER_ERROR);
  assert.equal(counters(f, 'bridge.box0.slot0').unsupportedRequests - b0, 8);
  assert.equal(counters(f, 'host.rootComplex').unsupported, 0, 'it never left the box');
});

test('writes and reads outside a BAR are counted by the device, not silently dropped; unclaimed MMIO by the host bridge', () => {
  const f = buildFabric(loadTopology('paper-2012'), 1);
  const h = boot(f, { maxTransferBytes: MiB });
  const rc = f.rootComplex;
  const sda = h.manager.lookup('sda');
  const dcbuf = h.manager.devicesOf<DcBufferDevice>('dc-buffer')[0];
  let read: number | null = null;
  const settle = () => f.scheduler.run({ maxEvents: 1_000_000 });
  // An SSD: BAR0 is 16 KiB; its slot's window 1 MiB, so these reach the drive.
  const ssd0 = counters(f, 'ssd.box0.slot0');
  assert.equal(ssd0.writesOutsideBar, 0);
  rc.mmioWrite32(sda.bar0 + 0x4000, 0x1234);
  rc.mmioWrite(sda.bar0 + 0x3ffc, new Uint8Array(8)); // crosses BAR0's end
  settle();
  assert.equal(counters(f, 'ssd.box0.slot0').writesOutsideBar, 2);
  rc.mmioRead32(sda.bar0 + 0x4000, (v) => (read = v));
  settle();
  assert.equal(read, 0xffffffff, 'a UR completion reads as all-ones');
  assert.equal(counters(f, 'ssd.box0.slot0').unsupportedRequests, 3, 'two writes and a read');
  // The DC buffer: a write that runs past the end of its BAR (its window ends with the BAR) reaches it and is refused.
  const dc0 = counters(f, 'dcbuffer.box0.slot2');
  rc.mmioWrite(dcbuf.bar0 + dcbuf.sizeBytes - 4, new Uint8Array(8).fill(1));
  settle();
  const dc1 = counters(f, 'dcbuffer.box0.slot2');
  assert.equal(dc1.writesOutsideBar - dc0.writesOutsideBar, 1);
  assert.equal(dc1.unsupportedRequests - dc0.unsupportedRequests, 1);
  assert.equal(dc1.writeRequests, dc0.writeRequests, 'nothing was written to DDR');
  // Below the BAR, in the window its port got (the window starts on a 1 MiB boundary after the SSDs',
  // the BAR on a multiple of its 64 MiB size): the buffer refuses that too, a read with a UR completion.
  const port = f.hostBridge.routes()[2];
  assert.ok(port.memBase < dcbuf.bar0, `window from 0x${port.memBase.toString(16)}, BAR at 0x${dcbuf.bar0.toString(16)}`);
  read = null;
  rc.mmioRead32(port.memBase, (v) => (read = v));
  settle();
  assert.equal(read, 0xffffffff);
  assert.equal(counters(f, 'dcbuffer.box0.slot2').unsupportedRequests - dc1.unsupportedRequests, 1);
  assert.equal(counters(f, 'dcbuffer.box0.slot2').writesOutsideBar, dc1.writesOutsideBar, 'a read is no write');
  // MMIO to an address no window claims: the host-side bridge (the virtual switch's upstream port) refuses it and counts.
  const hb = counters(f, 'bridge.host').unsupportedRequests;
  rc.mmioWrite32(0xe000_0000, 1);
  read = null;
  rc.mmioRead32(0xe000_0000, (v) => (read = v));
  settle();
  assert.equal(read, 0xffffffff);
  assert.equal(counters(f, 'bridge.host').unsupportedRequests - hb, 2, 'the posted write and the read');
});
