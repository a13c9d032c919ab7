/**
 * The Wireshark dissector (tools/wireshark/dconnect.lua) against the model: tshark decodes a capture
 * of a conventional move with the dissector, and its TLP counts and payload bytes by type equal those
 * of the project's own frame decoder over the same file (which capture.test.ts holds against the
 * trace counters). `.ci/run` installs Debian's tshark; without it this test is skipped, saying so.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Frame } from '../../src/ethernet/frame.js';
import { EXPETHER_ETHERTYPE, ExpEtherPdu } from '../../src/expether/pdu.js';
import { decodeExpEtherFrame, encodeExpEtherFrame } from '../../src/expether/pdu-codec.js';
import { captureConnect } from '../../src/runtime/capture.js';
import { runCopy } from '../../src/runtime/copy.js';
import { runNicMove } from '../../src/runtime/nic-moves.js';
import { pcapFileHeader, pcapRecord, readPcap } from '../../src/runtime/pcap.js';
import { loadTopology } from '../../src/topology/load.js';

const DISSECTOR = fileURLToPath(new URL('../../../tools/wireshark/dconnect.lua', import.meta.url));
const tshark = spawnSync('tshark', ['--version'], { encoding: 'utf8' });
const haveTshark = tshark.status === 0;

test('tshark with tools/wireshark/dconnect.lua decodes the capture as the model wrote it: TLP counts and payload bytes by type', { skip: haveTshark ? false : 'tshark is not installed (.ci/run installs it: apt-get install tshark)', timeout: 120_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'dconnect-tshark-'));
  try {
    const t = loadTopology('paper-2012');
    const chunks: Uint8Array[] = [pcapFileHeader()];
    const connect = captureConnect(t, ['host', 'box0.slot1'], (_l, ps, frame) => chunks.push(pcapRecord(ps, frame)));
    const r = runCopy({ topology: t, src: 'sda', srcOffset: 0, dst: 'sdb', dstOffset: 0, lengthBytes: 512 * 1024, via: 'host', seed: 2, fidelity: 'full', connect });
    connect.flush();
    assert.equal(r.verified, true);
    const file = join(dir, 'move.pcap');
    const bytes = new Uint8Array(Buffer.concat(chunks));
    writeFileSync(file, bytes);
    // Ours.
    const want: Record<string, { n: number; bytes: number }> = {};
    for (const rec of readPcap(bytes)) {
      const tlp = decodeExpEtherFrame(rec.frame).payload.tlp;
      if (!tlp) continue;
      const k = tlp.kind;
      want[k] ??= { n: 0, bytes: 0 };
      want[k].n++;
      want[k].bytes += tlp.data ? tlp.data.length : 0;
    }
    // Wireshark's.
    const out = spawnSync('tshark', ['-X', `lua_script:${DISSECTOR}`, '-r', file, '-T', 'fields', '-e', 'dconnect.tlp.type', '-e', 'dconnect.tlp.payload_len'], { encoding: 'utf8', timeout: 100_000 });
    assert.equal(out.status, 0, out.stderr);
    const got: Record<string, { n: number; bytes: number }> = {};
    for (const line of out.stdout.split('\n')) {
      const [type, len] = line.split('\t');
      if (!type) continue;
      got[type] ??= { n: 0, bytes: 0 };
      got[type].n++;
      got[type].bytes += Number(len);
    }
    assert.deepEqual(got, want);
    assert.ok(got.MWr.bytes >= 512 * 1024 && got.CplD.bytes >= 512 * 1024, 'the moved data is in the capture both ways');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('tshark decodes a NIC network capture as block transfer frames: every DATA frame in order, the moved bytes, the credits', { skip: haveTshark ? false : 'tshark is not installed (.ci/run installs it: apt-get install tshark)', timeout: 120_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'dconnect-tshark-bt-'));
  try {
    const t = loadTopology('paper-2012-nic');
    const chunks: Uint8Array[] = [pcapFileHeader()];
    const connect = captureConnect(t, ['client0-net.box0.slot3'], (_l, ps, frame) => chunks.push(pcapRecord(ps, frame)));
    const length = 256 * 1024;
    const r = runNicMove({ topology: t, src: 'sda', dst: 'net:client0', lengthBytes: length, via: 'dc-buffer', seed: 3, connect });
    connect.flush();
    assert.equal(r.verified, true);
    const file = join(dir, 'nic.pcap');
    writeFileSync(file, new Uint8Array(Buffer.concat(chunks)));
    const out = spawnSync('tshark', ['-X', `lua_script:${DISSECTOR}`, '-r', file, '-T', 'fields', '-e', 'dconnect_bt.type', '-e', 'dconnect_bt.seq', '-e', 'dconnect_bt.payload_len'], { encoding: 'utf8', timeout: 100_000 });
    assert.equal(out.status, 0, out.stderr);
    const rows = out.stdout.split('\n').filter((l) => l).map((l) => l.split('\t'));
    const data = rows.filter(([type]) => type === 'DATA');
    assert.deepEqual(data.map(([, seq]) => Number(seq)), Array.from({ length: r.frames }, (_, i) => i), 'every DATA frame, in order');
    assert.equal(data.reduce((n, [, , len]) => n + Number(len), 0), length);
    assert.ok(rows.some(([type]) => type === 'CREDIT'), 'the client\'s credits are on its cable too');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('tshark shows a NAK: its kind, the missing range it names and the cumulative ACK it carries', { skip: haveTshark ? false : 'tshark is not installed (.ci/run installs it: apt-get install tshark)', timeout: 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'dconnect-tshark-nak-'));
  try {
    const nak = new ExpEtherPdu('nak', -1, 41, null, null, { first: 42, last: 45 });
    const frames = [nak, new ExpEtherPdu('ack', -1, 46, null, null)].map((pdu) => encodeExpEtherFrame(new Frame(0x0060_b900_0001, 0x0060_b900_0002, 1, EXPETHER_ETHERTYPE, pdu, pdu.payloadBytes())));
    const file = join(dir, 'nak.pcap');
    writeFileSync(file, new Uint8Array(Buffer.concat([pcapFileHeader(), ...frames.map((f, i) => pcapRecord(1000 * i, f))])));
    const out = spawnSync('tshark', ['-X', `lua_script:${DISSECTOR}`, '-r', file, '-T', 'fields', '-e', 'dconnect.kind', '-e', 'dconnect.nak.first', '-e', 'dconnect.nak.last', '-e', 'dconnect.ack', '-e', '_ws.col.Info'], { encoding: 'utf8', timeout: 50_000 });
    assert.equal(out.status, 0, out.stderr);
    const rows = out.stdout.split('\n').filter((l) => l).map((l) => l.split('\t'));
    assert.deepEqual(rows, [
      ['nak', '42', '45', '41', 'nak 42..45 ack 41'],
      ['ack', '', '', '46', 'ack seq 0 ack 46'],
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
