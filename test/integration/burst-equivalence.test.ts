/**
 * Burst granularity against per-TLP (issue 18): on a matrix of presets, modes, host link widths and
 * one or two concurrent pairs, a move at burst granularity must deliver the same bytes, the same TLPs
 * and payload and TLP wire bytes on every PCIe link direction, DLLPs within one per burst they answer,
 * the same Ethernet data frames, and a simulated time within the stated bound
 * (BURST_RELATIVE_ERROR_BOUND). Each cell's measured error is printed (`node --test` shows it as a diagnostic) so the report can quote it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BURST_RELATIVE_ERROR_BOUND, runMoves, type MovesRequest, type MovesResult, type Via } from '../../src/runtime/moves.js';
import { loadTopology } from '../../src/topology/load.js';
import type { Topology } from '../../src/topology/schema.js';
import { DLLP_BYTES } from '../../src/pcie/link-params.js';
import { connectBytes } from '../../src/expether/bytes-channel.js';
import { decodeExpEtherFrame } from '../../src/expether/pdu-codec.js';
import { captureConnect } from '../../src/runtime/capture.js';

const MiB = 1 << 20;

function topologyOf(preset: string, lanes: number, pairs: number): Topology {
  const t = loadTopology(preset);
  t.host.link.lanes = lanes as Topology['host']['link']['lanes'];
  if (pairs > 1) t.boxes = [{ name: 'box0', slots: [...Array.from({ length: 2 * pairs }, (_, i) => ({ kind: 'ssd' as const, serial: `S${i}` })), { kind: 'dc-buffer' as const }] }];
  return t;
}

function run(preset: string, via: Via, lanes: number, pairs: number, granularity: 'tlp' | 'burst'): MovesResult {
  const names = ['sda', 'sdb', 'sdc', 'sdd'];
  const req: MovesRequest = {
    topology: topologyOf(preset, lanes, pairs),
    pairs: Array.from({ length: pairs }, (_, i) => ({ src: names[2 * i], srcOffset: 0, dst: names[2 * i + 1], dstOffset: 0 })),
    lengthBytes: 2 * MiB,
    via,
    seed: 5,
    fidelity: 'full',
    granularity,
  };
  return runMoves(req);
}

const cells: Array<[string, Via, number, number]> = [];
for (const preset of ['paper-2012', 'paper-2012-live', 'modern'])
  for (const via of ['dc-buffer', 'host'] as Via[])
    for (const lanes of [1, 8]) cells.push([preset, via, lanes, 1]);
cells.push(['paper-2012', 'dc-buffer', 8, 2], ['paper-2012', 'host', 8, 2], ['modern', 'dc-buffer', 8, 2]);

for (const [preset, via, lanes, pairs] of cells) {
  test(`burst matches per-TLP: ${preset}, ${via === 'host' ? 'conventional' : 'direct'}, x${lanes}, ${pairs} pair(s)`, (t) => {
    const a = run(preset, via, lanes, pairs, 'tlp');
    const b = run(preset, via, lanes, pairs, 'burst');
    assert.deepEqual(b.granularity.mode, 'burst');
    for (let i = 0; i < pairs; i++) {
      assert.ok(b.moves[i].verified, `move ${i} verified`);
      assert.equal(b.moves[i].sha256, a.moves[i].sha256);
    }
    for (const [name, k] of Object.entries(a.trace)) {
      const kb = b.trace[name];
      if ('tlps' in k && 'dllps' in k) {
        // A PCIe link direction: TLPs, payload and TLP wire bytes equal; DLLPs approximated (stated in the docs).
        // Within 2 TLPs: control TLPs (doorbells) committed around the instant the last write completes
        // fall on either side of the final snapshot, since the two runs end at slightly different times.
        for (const f of ['tlps', 'MWr', 'MRd', 'CplD', 'Cpl']) assert.ok(Math.abs(kb[f] - k[f]) <= 2, `${name}.${f}: ${kb[f]} vs ${k[f]}`);
        assert.ok(Math.abs(kb.payloadBytes - k.payloadBytes) <= 2 * 64, `${name}.payloadBytes: ${kb.payloadBytes} vs ${k.payloadBytes}`);
        const tlpWire = (x: Record<string, number>) => x.wireBytes - x.dllps * DLLP_BYTES;
        assert.ok(Math.abs(tlpWire(kb) - tlpWire(k)) <= 2 * (16 + 64 + 8), `${name} TLP wire bytes: ${tlpWire(kb)} vs ${tlpWire(k)}`);
        // DLLPs within one per burst they answer: a direction's ACKs and UpdateFCs acknowledge and free
        // the TLPs of the reverse direction, and each of its bursts may batch them differently (and 2
        // either side of the final snapshot).
        const reverse = b.trace[name.endsWith('.downstream') ? name.replace(/downstream$/, 'upstream') : name.replace(/upstream$/, 'downstream')];
        assert.ok(reverse && 'bursts' in reverse, `${name}: the reverse direction's counters`);
        assert.equal(k.bursts, 0, `${name}: no bursts per TLP`);
        assert.ok(Math.abs(kb.dllps - k.dllps) <= reverse.bursts + 2, `${name}.dllps: ${kb.dllps} vs ${k.dllps}, beyond one per burst of the reverse direction (${reverse.bursts})`);
      }
      if ('framesSent' in k) {
        // Data frames, first transmissions (per-TLP's go-back-N timer may resend some; bursts need a lossless fabric).
        const first = (x: Record<string, number>) => x.framesSent - x.retransmittedFrames;
        assert.ok(Math.abs(first(kb) - first(k)) <= 2, `${name}.framesSent: ${first(kb)} vs ${first(k)}`);
        assert.ok(Math.abs(kb.tlpsToEthernet - k.tlpsToEthernet) <= 2, `${name}.tlpsToEthernet: ${kb.tlpsToEthernet} vs ${k.tlpsToEthernet}`);
      }
    }
    const err = (b.aggregate.simulatedSeconds - a.aggregate.simulatedSeconds) / a.aggregate.simulatedSeconds;
    t.diagnostic(`error ${(err * 100).toFixed(3)}%; events per MiB ${Math.round(a.events / (2 * pairs))} -> ${Math.round(b.events / (2 * pairs))} (${((b.events / a.events) * 100).toFixed(1)}%)`);
    assert.ok(Math.abs(err) <= BURST_RELATIVE_ERROR_BOUND, `|error| ${(err * 100).toFixed(3)}% within the stated ${BURST_RELATIVE_ERROR_BOUND * 100}%`);
  });
}

// Outside the matrix, where the stated bound does not hold yet (docs/architecture.md "Two
// granularities", performance.md): paper-2012 conventional at x1 with an MRRS of 2048, both
// directions of the host link full of credit-bound TLPs. Pinned so that a change to it is seen:
// burst runs 6.8% fast on this 2 MiB move (9.5% at 4 MiB; 16.5% and 19% before the DLLP stretches);
// the test fails past 12%, and says so when the gap closes to within the bound (then this case
// belongs in the matrix).
test('known gap: paper-2012 conventional x1 with MRRS 2048 at burst granularity runs fast by more than the stated bound (6.8% at 2 MiB)', () => {
  const of = (granularity: 'tlp' | 'burst') => {
    const t = topologyOf('paper-2012', 1, 1);
    t.pcie.mrrsBytes = 2048;
    return runMoves({ topology: t, pairs: [{ src: 'sda', srcOffset: 0, dst: 'sdb', dstOffset: 0 }], lengthBytes: 2 * MiB, via: 'host', seed: 5, fidelity: 'full', granularity });
  };
  const a = of('tlp');
  const b = of('burst');
  assert.ok(b.moves[0].verified);
  const err = b.aggregate.simulatedSeconds / a.aggregate.simulatedSeconds - 1;
  assert.ok(err > -0.12, `burst ${(err * 100).toFixed(2)}% off per-TLP: the known gap grew`);
  assert.ok(Math.abs(err) > BURST_RELATIVE_ERROR_BOUND, `burst ${(err * 100).toFixed(2)}% off per-TLP: within the stated bound now, so move this case into the matrix`);
});

test('bursts as bytes: over the bytes channel (burst records) a move at burst granularity is the same as over frame objects, and a capture holds per-TLP\'s data frames', () => {
  for (const [preset, via] of [['paper-2012', 'host'], ['paper-2012-live', 'dc-buffer'], ['paper-2012-live', 'host']] as const) {
    const t = topologyOf(preset, 1, 1);
    const req: MovesRequest = { topology: t, pairs: [{ src: 'sda', srcOffset: 0, dst: 'sdb', dstOffset: 0 }], lengthBytes: 2 * MiB, via, seed: 5, fidelity: 'full', granularity: 'burst' };
    const objects = runMoves(req);
    const bytes = runMoves({ ...req, connect: connectBytes });
    assert.ok(bytes.moves[0].verified, `${preset} ${via}: verified through the codec`);
    assert.equal(bytes.aggregate.simulatedSeconds, objects.aggregate.simulatedSeconds, `${preset} ${via}: same simulated time`);
    assert.equal(bytes.events, objects.events, `${preset} ${via}: same events`);
    assert.deepEqual(bytes.trace, objects.trace, `${preset} ${via}: same counters`);
  }
  // A capture splits bursts into the frames per-TLP sends: the same TLP frames on the host's cable.
  const tlpFrames = (granularity: 'tlp' | 'burst') => {
    const t = topologyOf('paper-2012', 1, 1);
    const kinds: Record<string, number> = {};
    const connect = captureConnect(t, ['host'], (_link, _ps, frame) => {
      const tlp = decodeExpEtherFrame(frame).payload.tlp;
      if (tlp) kinds[tlp.kind] = (kinds[tlp.kind] ?? 0) + 1;
    });
    const r = runMoves({ topology: t, pairs: [{ src: 'sda', srcOffset: 0, dst: 'sdb', dstOffset: 0 }], lengthBytes: MiB, via: 'host', seed: 5, fidelity: 'full', granularity, connect });
    connect.flush();
    assert.ok(r.moves[0].verified);
    return kinds;
  };
  const a = tlpFrames('tlp');
  const b = tlpFrames('burst');
  for (const kind of ['MWr', 'MRd', 'CplD']) assert.ok(Math.abs((b[kind] ?? 0) - (a[kind] ?? 0)) <= 2, `captured ${kind} frames: ${b[kind]} at burst vs ${a[kind]} per TLP`);
  assert.ok((a.CplD ?? 0) > 1000);
});
