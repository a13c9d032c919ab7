import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StateDigest } from '../../src/core/digest.js';
import type { NicDevice } from '../../src/host/dc/manager.js';
import { NicOperator, type NicMove, type NicMoveStats } from '../../src/host/dc/nic-operator.js';
import { ClientNode } from '../../src/net/client-node.js';
import { boot } from '../../src/runtime/boot.js';
import { buildFabric } from '../../src/topology/builder.js';
import { loadTopology } from '../../src/topology/load.js';

const digestOf = (m: NicMove, nowPs: number): string => {
  const d = new StateDigest(nowPs);
  m.digest(d);
  return d.text();
};

test('a NIC move is an object: its digest describes its state relative to now, changes as it moves, and is the same for the same state', () => {
  const f = buildFabric(loadTopology('paper-2012-nic'), 1);
  const host = boot(f, { maxTransferBytes: 128 << 10 });
  const nic = host.manager.devicesOf<NicDevice>('nic')[0];
  const drive = host.manager.lookup('sda');
  const buf = host.manager.relays().find((r) => r.via === 'dc-buffer')!;
  const client = f.nodes.get('client0') as ClientNode;
  const len = 4 << 20;
  let got = 0;
  let clientDone: Error | null | undefined;
  client.receive(1, nic.mac, len, 1024, (_off, data) => (got += data.length), (e) => (clientDone = e));
  let stats: NicMoveStats | null = null;
  const m = new NicOperator(f.scheduler).move(
    { kind: 'serve', nic: nic.driver, drive, driveOffset: 0, toMac: client.mac, stream: 1, lengthBytes: len, chunkBytes: 128 << 10, depth: 3, slots: [0, 1, 2].map((i) => buf.busAddress + i * (128 << 10)), frameBytes: 1024, perFrameCpuNs: 250 },
    (s) => (stats = s),
    (e) => assert.fail(e),
  );
  const first = digestOf(m, f.scheduler.now());
  assert.match(first, /nic-move:serve/);
  assert.equal(digestOf(m, f.scheduler.now()), first, 'the same state, the same digest');
  f.scheduler.run({ maxEvents: 20_000_000, stop: () => stats !== null && clientDone !== undefined });
  assert.equal(stats!.frames, len / 1024);
  assert.equal(got, len);
  assert.equal(clientDone, null);
  assert.notEqual(digestOf(m, f.scheduler.now()), first, 'a finished move is not where it began');
});
