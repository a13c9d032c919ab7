/**
 * `--fidelity full` is the per-TLP reference and must never change. The fixture holds runCopy's whole
 * result (simulated time, events, every trace counter, sha256) for three moves as computed by commit
 * 988f69e, before the fast fidelity existed; the same moves at full fidelity must reproduce it
 * exactly (the `fidelity`, `granularity`, `devices` and `relay` fields, added since, aside; trace counters added
 * since are not in the fixture, every counter it holds must be equal). A deliberate model change updates the fixture
 * in the same commit and says why.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { runCopy, type CopyRequest } from '../../src/runtime/copy.js';
import { loadTopology } from '../../src/topology/load.js';

const FIXTURE = fileURLToPath(new URL('../../../test/fixtures/full-reference-988f69e.json', import.meta.url));

const cases: Array<{ name: string; lanes: 1 | 8; req: Omit<CopyRequest, 'topology'> }> = [
  { name: 'direct, x1, 2 MiB', lanes: 1, req: { src: 'sda', srcOffset: 0, dst: 'sdb', dstOffset: 0, lengthBytes: 2 << 20, via: 'dc-buffer', seed: 3 } },
  { name: 'conventional, x1, 2 MiB', lanes: 1, req: { src: 'sda', srcOffset: 0, dst: 'sdb', dstOffset: 0, lengthBytes: 2 << 20, via: 'host', seed: 3 } },
  {
    name: 'direct, x8, depth 3, 256 KiB chunks, offsets, partial last chunk',
    lanes: 8,
    req: { src: 'sda', srcOffset: 4096 * 5, dst: 'sdb', dstOffset: 1 << 20, lengthBytes: (1 << 20) + 4096 * 3, via: 'dc-buffer', seed: 11, depth: 3, chunkBytes: 256 * 1024 },
  },
];

const reference = JSON.parse(readFileSync(FIXTURE, 'utf8')) as unknown[];

for (const [i, c] of cases.entries()) {
  test(`full fidelity reproduces the pre-fast-path reference: ${c.name}`, () => {
    const topology = loadTopology('paper-2012');
    topology.host.link.lanes = c.lanes;
    const r: Record<string, unknown> = { ...runCopy({ topology, ...c.req, fidelity: 'full' }) };
    const chunks = (r.commands as { read: number }).read;
    assert.deepEqual(r.fidelity, { mode: 'full', exact: true, relativeError99: 0, detailedChunks: chunks, totalChunks: chunks, method: 'full: every TLP simulated' });
    delete r.fidelity;
    // Added since: the granularity that produced it (per-TLP, the default and the reference).
    assert.deepEqual(r.granularity, { mode: 'tlp' });
    delete r.granularity;
    // Added since, and not model output: the names of the devices behind the counters.
    assert.deepEqual(r.devices, { 'box0.slot0': 'sda', 'box0.slot1': 'sdb', 'box0.slot2': 'dcbuf0' });
    delete r.devices;
    assert.equal(r.relay, c.req.via === 'host' ? 'host memory' : 'dcbuf0');
    delete r.relay;
    // Counters added since (time integrals of windows and queues: credit, window and tag waits, read
    // queueing, commands in work) observe and change nothing: every counter the reference has must
    // be equal, and no source may be missing or new.
    const got = JSON.parse(JSON.stringify(r)) as { trace: Record<string, Record<string, number>> };
    const want = reference[i] as { trace: Record<string, Record<string, number>> };
    assert.deepEqual(Object.keys(got.trace).sort(), Object.keys(want.trace).sort(), 'the same trace sources');
    for (const [name, set] of Object.entries(want.trace)) {
      const same: Record<string, number> = {};
      for (const k of Object.keys(set)) same[k] = got.trace[name][k];
      assert.deepEqual(same, set, `trace ${name}`);
    }
    assert.deepEqual({ ...got, trace: undefined }, { ...want, trace: undefined });
  });
}
