/**
 * Captures (`copy --capture LINK --pcap FILE`): the frames on a cable as real bytes in a pcap file,
 * stamped in simulated time. The capture's TLPs must be the trace's: on the host cable, the MWr and
 * MRd counts toward the host equal the host link's upstream counters (every memory request a device
 * sends the host crosses that cable once; the fabric here loses nothing), and the capture changes no
 * result. (The capture starts at boot, the result's counters at the move: boot's are added.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeExpEtherFrame } from '../../src/expether/pdu-codec.js';
import { wireBytes } from '../../src/ethernet/frame.js';
import { captureConnect, linkName, listLinks } from '../../src/runtime/capture.js';
import * as faults from '../../src/runtime/faults.js';
import { runCopy } from '../../src/runtime/copy.js';
import { readPcapng } from '../../src/runtime/pcapng.js';
import { pcapFileHeader, pcapRecord, readPcap } from '../../src/runtime/pcap.js';
import { loadTopology } from '../../src/topology/load.js';
import { boot } from '../../src/runtime/boot.js';
import { buildFabric } from '../../src/topology/builder.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const HOST_BRIDGE_MAC = 0x0060_b900_0001;

test('links are named as --capture takes them: host, the slots, switch to switch', () => {
  assert.deepEqual(listLinks(loadTopology('paper-2012')), ['sw0-sw1', 'host', 'box0.slot0', 'box0.slot1', 'box0.slot2']);
  assert.equal(linkName('sw1.p3', 'box1.slot5'), 'box1.slot5');
});

test('a capture of the host cable holds the TLPs the host link carried, and changes no result', () => {
  const t = loadTopology('paper-2012');
  const req = { topology: t, src: 'sda', srcOffset: 0, dst: 'sdb', dstOffset: 0, lengthBytes: 1 << 20, via: 'host' as const, seed: 4, fidelity: 'full' as const };
  const chunks: Uint8Array[] = [pcapFileHeader()];
  const connect = captureConnect(t, ['host'], (link, ps, frame) => {
    assert.equal(link, 'host');
    chunks.push(pcapRecord(ps, frame));
  });
  const captured = runCopy({ ...req, connect });
  connect.flush();
  const plain = runCopy(req);
  assert.deepEqual(captured, plain, 'a capture only records');
  const bytes = new Uint8Array(Buffer.concat(chunks));
  const records = readPcap(bytes);
  assert.ok(records.length > 1000);
  const towardHost: Record<string, number> = {};
  let last = 0;
  for (const r of records) {
    assert.ok(r.timeNs >= last, 'records in time order');
    last = r.timeNs;
    const f = decodeExpEtherFrame(r.frame);
    if (f.dst !== HOST_BRIDGE_MAC || !f.payload.tlp) continue;
    towardHost[f.payload.tlp.kind] = (towardHost[f.payload.tlp.kind] ?? 0) + 1;
  }
  // The capture starts at boot; the result's trace covers the move: add what boot sends (deterministic).
  const booted = boot(buildFabric(t, 4), { maxTransferBytes: t.copy.chunkBytes });
  const bootUp = booted.fabric.trace.snapshot()['hostLink.upstream'];
  const up = plain.trace['hostLink.upstream'];
  // Every memory request from a device crosses the cable; completions can also come from the host-side
  // bridge itself (its own configuration space, answered on the host link without Ethernet).
  for (const kind of ['MWr', 'MRd'] as const) assert.equal(towardHost[kind] ?? 0, up[kind] + bootUp[kind], `${kind} toward the host: capture against the host link's counter`);
  assert.ok((towardHost.CplD ?? 0) <= up.CplD + bootUp.CplD && (towardHost.CplD ?? 0) > 0);
  assert.ok(up.MWr > 100, 'the conventional move wrote into host memory');
});

test('copy --capture --pcap writes a pcap file of one cable, pcapng of several (an interface each, named after its cable); a bad link exits 2 and writes nothing', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dconnect-pcap-'));
  try {
    const file = join(dir, 'move.pcap');
    const r = spawnSync(process.execPath, [CLI, 'copy', 'sda', 'sdb', '--length', '1MiB', '--capture', 'host', '--pcap', file, '--fidelity', 'full', '--json'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /captured \d+ frames on host into/);
    const records = readPcap(new Uint8Array(readFileSync(file)));
    assert.ok(records.length > 100);
    // Several cables into a .pcap would lose which cable a frame was on: refused before the move.
    const several = spawnSync(process.execPath, [CLI, 'copy', 'sda', 'sdb', '--length', '1MiB', '--capture', 'host,box0.slot2', '--pcap', join(dir, 'two.pcap')], { encoding: 'utf8' });
    assert.equal(several.status, 2);
    assert.match(several.stderr, /needs pcapng.*two\.pcapng/s);
    assert.equal(several.stdout, '');
    const ngFile = join(dir, 'move.pcapng');
    const ng = spawnSync(process.execPath, [CLI, 'copy', 'sda', 'sdb', '--length', '1MiB', '--capture', 'host,box0.slot2', '--pcap', ngFile, '--fidelity', 'full', '--json'], { encoding: 'utf8' });
    assert.equal(ng.status, 0, ng.stderr);
    assert.match(ng.stderr, /captured \d+ frames on host \(\d+\) and box0\.slot2 \(\d+\) into/);
    const cap = readPcapng(new Uint8Array(readFileSync(ngFile)));
    assert.deepEqual(cap.interfaces, ['host', 'box0.slot2']);
    const on = (i: number) => cap.packets.filter((p) => p.iface === i);
    assert.ok(on(0).length > 10 && on(1).length > 100, 'frames on both cables');
    // A direct move's data is on the DC buffer's cable, not the host's: the interface tells them apart.
    const bytes = (i: number) => on(i).reduce((n, p) => n + p.frame.length, 0);
    assert.ok(bytes(1) > 2 * (1 << 20), 'the data, both ways, on the DC buffer\'s cable');
    assert.ok(bytes(0) < bytes(1) / 10, 'commands and completions only on the host\'s');
    const bad = spawnSync(process.execPath, [CLI, 'copy', 'sda', 'sdb', '--length', '1MiB', '--capture', 'nowhere', '--pcap', join(dir, 'bad.pcap')], { encoding: 'utf8' });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /no link 'nowhere'.*links: sw0-sw1, host/s);
    assert.throws(() => readFileSync(join(dir, 'bad.pcap')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a capture over a faulty cable shows what the sender transmitted, retransmissions included; the move still verifies', () => {
  const t = loadTopology('paper-2012');
  const { faultConnect, parseFault } = faults;
  const f = faultConnect(t, [parseFault('loss=3%@host')], 9);
  let seen = 0;
  let retransmitted = 0;
  const seqs = new Set<string>();
  const connect = captureConnect(
    t,
    ['host'],
    (_link, _ps, frame) => {
      seen++;
      const fr = decodeExpEtherFrame(frame);
      if (fr.payload.seq < 0) return;
      const key = `${fr.src}:${fr.payload.seq}`;
      if (seqs.has(key)) retransmitted++;
      seqs.add(key);
    },
    f.connect,
  );
  const r = runCopy({ topology: t, src: 'sda', srcOffset: 0, dst: 'sdb', dstOffset: 0, lengthBytes: 512 << 10, via: 'host', seed: 9, fidelity: 'full', connect });
  connect.flush();
  assert.equal(r.verified, true);
  assert.ok(f.counts.lost > 0, 'frames were lost');
  assert.equal(seen, f.counts.frames, 'every frame the faulty cable carried (or lost) was captured at the sender');
  assert.ok(retransmitted > 0, 'the capture shows the retransmissions');
});

test('each frame is stamped when its first bit leaves: on one cable and direction, stamps grow by at least the previous frame\'s serialization', () => {
  const t = loadTopology('paper-2012');
  const rateBytesPerPs = (t.ethernet.rateGbps * 1e9) / 8 / 1e12;
  const last = new Map<string, { ps: number; wirePs: number }>();
  let ordered = true;
  let prevPs = -1;
  let frames = 0;
  let sameStamp = 0;
  const connect = captureConnect(t, ['host', 'box0.slot2'], (link, ps, frame) => {
    frames++;
    if (ps < prevPs) ordered = false;
    const f = decodeExpEtherFrame(frame);
    const key = `${link}:${f.src}`; // a direction: the sender on its cable
    const prev = last.get(key);
    if (prev) {
      if (ps === prev.ps) sameStamp++;
      assert.ok(ps >= prev.ps + prev.wirePs, `${link} from ${f.src.toString(16)}: frame at ${ps} ps starts before the previous one (at ${prev.ps} ps, ${prev.wirePs} ps on the wire) has left`);
    }
    prevPs = ps;
    last.set(key, { ps, wirePs: Math.ceil(wireBytes(frame.length - 18) / rateBytesPerPs) });
  });
  const r = runCopy({ topology: t, src: 'sda', srcOffset: 0, dst: 'sdb', dstOffset: 0, lengthBytes: 1 << 20, via: 'host', seed: 5, fidelity: 'full', connect });
  connect.flush();
  assert.equal(r.verified, true);
  assert.ok(frames > 10_000, `${frames} frames captured`);
  assert.equal(sameStamp, 0);
  assert.ok(ordered, 'the sink sees frames in time order across cables');
});
