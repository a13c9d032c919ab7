/**
 * The fast fidelity of moves through a NIC (serve and ingest): each kind at both fidelities over
 * several seeds and sizes. The fast result's bandwidth lies within its stated 99.7% interval of the
 * full run's (equal when exact), every byte arrives at the far end, and the counters (frames, drive
 * commands, host-link payload, the NIC's and the client's frames) agree with the full run's within
 * that interval. A pipeline asked for fast runs in full; the default stays full. It runs once, over the
 * in-memory channel (the fast path does not depend on the channel, and test/integration/nic-moves.test.ts
 * shows the bytes channel gives the default's results exactly); DCONNECT_TEST_CHANNEL=bytes picks it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connectBytes } from '../../src/expether/bytes-channel.js';
import { runNicMove, type NicMoveRequest, type NicMoveResult } from '../../src/runtime/nic-moves.js';
import { connectCable, type ConnectFn } from '../../src/topology/builder.js';
import { loadTopology } from '../../src/topology/load.js';

const MiB = 1 << 20;
const channel: ConnectFn = process.env.DCONNECT_TEST_CHANNEL === 'bytes' ? connectBytes : connectCable;

function move(over: Partial<NicMoveRequest>): NicMoveResult {
  return runNicMove({ topology: loadTopology('paper-2012-nic'), src: 'sda', dst: 'net:client0', lengthBytes: 8 * MiB, via: 'dc-buffer', seed: 1, connect: channel, ...over });
}

/** |a - b| relative to b is within rel (plus a rounding hair), or a equals b when rel is 0. */
function within(a: number, b: number, rel: number, what: string): void {
  if (rel === 0) return assert.equal(a, b, what);
  const d = Math.abs(a - b) / Math.max(1, Math.abs(b));
  assert.ok(d <= rel + 1e-6, `${what}: ${a} vs ${b} (${(d * 100).toFixed(4)}% > ${(rel * 100).toFixed(4)}%)`);
}

function compare(full: NicMoveResult, fast: NicMoveResult, what: string): void {
  assert.equal(full.fidelity.mode, 'full', what);
  assert.equal(fast.fidelity.mode, 'fast', what);
  assert.ok(full.verified && fast.verified, `${what}: verified`);
  assert.equal(fast.frames, full.frames, `${what}: frames`);
  assert.equal(fast.commands, full.commands, `${what}: commands`);
  assert.equal(fast.fidelity.totalChunks, full.fidelity.totalChunks, what);
  const rel = fast.fidelity.exact ? 0 : fast.fidelity.relativeError99;
  if (!fast.fidelity.exact) assert.ok(rel > 0 && rel < 0.05, `${what}: interval ${rel}`);
  within(fast.mbPerSec, full.mbPerSec, rel, `${what}: MB/s`);
  within(fast.simulatedSeconds, full.simulatedSeconds, rel, `${what}: seconds`);
  const payload = (r: NicMoveResult) => r.hostLink.upstreamPayloadBytes + r.hostLink.downstreamPayloadBytes;
  within(payload(fast), payload(full), rel, `${what}: host-link payload`);
  within(fast.hostLink.upstreamTlps + fast.hostLink.downstreamTlps, full.hostLink.upstreamTlps + full.hostLink.downstreamTlps, rel, `${what}: host-link TLPs`);
  const nic = (r: NicMoveResult) => r.trace['nic.box0.slot3'];
  within(nic(fast).txFrames + nic(fast).rxFrames, nic(full).txFrames + nic(full).rxFrames, rel, `${what}: NIC frames`);
  const cl = (r: NicMoveResult) => r.trace['client.client0'];
  within(cl(fast).txPayloadBytes + cl(fast).rxPayloadBytes, cl(full).txPayloadBytes + cl(full).rxPayloadBytes, rel, `${what}: client payload`);
  assert.equal(nic(fast).rxMissed, 0, what);
}

const cases: { kind: string; src: string; dst: string; via: 'dc-buffer' | 'host'; mib: number; seed: number }[] = [
  ...[1, 2, 3].flatMap((seed) => [16, 48].map((mib) => ({ kind: 'ingest', src: 'net:client0', dst: 'sdb', via: 'dc-buffer' as const, mib, seed }))),
  { kind: 'ingest', src: 'net:client0', dst: 'sdb', via: 'host', mib: 32, seed: 4 },
  ...[1, 2].flatMap((seed) => [24, 64].map((mib) => ({ kind: 'serve', src: 'sda', dst: 'net:client0', via: 'dc-buffer' as const, mib, seed }))),
];

for (const c of cases) {
  test(`fast NIC ${c.kind} ${c.mib} MiB ${c.via} seed ${c.seed}: within its interval of full`, () => {
    const req = { src: c.src, dst: c.dst, lengthBytes: c.mib * MiB, via: c.via, seed: c.seed };
    const full = move({ ...req, fidelity: 'full' });
    const fast = move({ ...req, fidelity: 'fast' });
    assert.equal(fast.kind, c.kind);
    compare(full, fast, `${c.kind} ${c.mib} MiB ${c.via} seed ${c.seed}`);
  });
}

test('fast NIC ingest jumps its steady state: most chunks skipped, far fewer events', () => {
  const req = { src: 'net:client0', dst: 'sdb', lengthBytes: 48 * MiB, seed: 5 };
  const full = move({ ...req, fidelity: 'full' });
  const fast = move({ ...req, fidelity: 'fast' });
  compare(full, fast, 'ingest 48 MiB seed 5');
  assert.ok(!fast.fidelity.exact && fast.fidelity.detailedChunks < fast.fidelity.totalChunks / 2, JSON.stringify(fast.fidelity));
  assert.ok(fast.events < full.events / 2, `${fast.events} events vs ${full.events}`);
});

test('fast NIC serve of 256 MiB jumps most of its chunks, within its interval of full', () => {
  const req = { lengthBytes: 256 * MiB, seed: 3 };
  const full = move({ ...req, fidelity: 'full' });
  const fast = move({ ...req, fidelity: 'fast' });
  compare(full, fast, 'serve 256 MiB seed 3');
  assert.ok(fast.fidelity.detailedChunks < fast.fidelity.totalChunks / 2, JSON.stringify(fast.fidelity));
});

test('fast NIC ingest with a short last chunk: verified, within its interval of full', () => {
  const req = { src: 'net:client0', dst: 'sdb', lengthBytes: 24 * MiB + 32 * 1024, chunkBytes: 96 * 1024, seed: 6 };
  const full = move({ ...req, fidelity: 'full' });
  const fast = move({ ...req, fidelity: 'fast' });
  compare(full, fast, 'ingest short last chunk');
  assert.ok(fast.fidelity.detailedChunks < fast.fidelity.totalChunks, JSON.stringify(fast.fidelity));
});

test('fast NIC moves with an offset drive range move the right bytes (the skipped chunks\' too)', () => {
  const fast = move({ src: 'net:client0', dst: 'sdb', dstOffset: 1 * MiB, lengthBytes: 16 * MiB, fidelity: 'fast' });
  assert.ok(fast.verified && fast.fidelity.detailedChunks < fast.fidelity.totalChunks, JSON.stringify(fast.fidelity));
  const fastServe = move({ src: 'sda', srcOffset: 3 * MiB, dst: 'net:client0', lengthBytes: 64 * MiB, fidelity: 'fast' });
  assert.ok(fastServe.verified);
});

test('NIC moves default to full fidelity; a pipeline asked for fast runs in full', () => {
  const d = move({ lengthBytes: 2 * MiB });
  assert.equal(d.fidelity.mode, 'full');
  assert.equal(d.fidelity.method, 'full: every TLP and frame simulated');
  const p = move({ src: 'net:client0', dst: 'net:client1', lengthBytes: 2 * MiB, fidelity: 'fast' });
  assert.ok(p.verified);
  assert.equal(p.fidelity.mode, 'full');
  assert.match(p.fidelity.method, /pipeline has no fast path/);
  const q = move({ src: 'net:client0', dst: 'net:client1', lengthBytes: 2 * MiB, fidelity: 'full' });
  assert.deepEqual({ ...p, fidelity: null, trace: null }, { ...q, fidelity: null, trace: null });
});
