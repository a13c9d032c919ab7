import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DconnectError } from '../../src/core/errors.js';
import { runCopy, runMoves } from '../../src/runtime/copy.js';
import { listDevices } from '../../src/runtime/devices.js';
import { buildFabric } from '../../src/topology/builder.js';
import { loadTopology } from '../../src/topology/load.js';
import { topologySchema, type Topology } from '../../src/topology/schema.js';

const MiB = 1 << 20;
type Slot = Topology['boxes'][number]['slots'][number];
const ssd = (serial: string): Slot => ({ kind: 'ssd', serial });
const buffer: Slot = { kind: 'dc-buffer' };

function boxes(...contents: Slot[][]): Topology {
  const t = loadTopology('paper-2012');
  t.boxes = contents.map((slots, i) => ({ name: `box${i}`, slots }));
  return t;
}

/** Direct 2 MiB moves between `pairs` at once: each move's relay and whether it verified. */
function relays(t: Topology, ...pairs: [string, string][]): [string, boolean][] {
  const r = runMoves({ topology: t, pairs: pairs.map(([src, dst]) => ({ src, srcOffset: 0, dst, dstOffset: 0 })), lengthBytes: 2 * MiB, via: 'dc-buffer', seed: 1 });
  return r.moves.map((m) => [m.relay, m.verified]);
}

test('several boxes: each has its own switch on the shared path; SSDs are named in enumeration order across boxes', () => {
  const t = boxes([ssd('A0'), ssd('A1'), buffer], [ssd('B0'), ssd('B1'), buffer]);
  const f = buildFabric(t, 1);
  assert.deepEqual(
    f.switches.map((s) => `${s.name}:${s.ports.length}`),
    ['sw0:3', 'sw1.box0:4', 'sw1.box1:4'],
  );
  const devs = listDevices(t, 1);
  assert.deepEqual(
    devs.map((d) => `${d.name}@${d.box}/${d.slot}`),
    ['sda@box0/0', 'sdb@box0/1', 'sdc@box1/0', 'sdd@box1/1', 'dcbuf0@box0/2', 'dcbuf1@box1/2'],
  );
});

test('a box of 16 SSDs and two DC buffers enumerates, and a move between its last drives verifies', () => {
  const t = boxes([...Array.from({ length: 16 }, (_, i) => ssd(`S${i}`)), buffer, buffer]);
  const devs = listDevices(t, 1);
  assert.equal(devs.filter((d) => d.kind === 'ssd').length, 16);
  assert.equal(devs.filter((d) => d.kind === 'dc-buffer').length, 2);
  const r = runCopy({ topology: t, src: 'sdo', srcOffset: 0, dst: 'sdp', dstOffset: 0, lengthBytes: 2 * MiB, via: 'dc-buffer', seed: 2 });
  assert.equal(r.verified, true);
  assert.equal(r.relay, 'dcbuf0');
});

test('relay by distance: within a box its own buffer; between boxes the nearer, then the less loaded', () => {
  const t = boxes([ssd('A0'), ssd('A1'), buffer], [ssd('B0'), ssd('B1'), buffer]);
  const within = runMoves({ topology: t, pairs: [{ src: 'sdc', srcOffset: 0, dst: 'sdd', dstOffset: 0 }], lengthBytes: 2 * MiB, via: 'dc-buffer', seed: 1 });
  assert.equal(within.moves[0].relay, 'dcbuf1', 'box1 to box1 uses box1\'s buffer, not the first one');
  assert.ok(within.trace['box1.slot2.link.downstream'].MWrPayloadBytes >= 2 * MiB);
  assert.deepEqual(
    relays(t, ['sda', 'sdc'], ['sdb', 'sdd']),
    [
      ['dcbuf0', true],
      ['dcbuf1', true],
    ],
    'two cross-box moves at equal distance spread over the two buffers',
  );
  // Only box1 has a buffer: a move inside box0 is relayed across the switches.
  const far = boxes([ssd('A0'), ssd('A1')], [ssd('B0'), buffer]);
  const r = runCopy({ topology: far, src: 'sda', srcOffset: 0, dst: 'sdb', dstOffset: 0, lengthBytes: 2 * MiB, via: 'dc-buffer', seed: 1 });
  assert.equal(r.relay, 'dcbuf0');
  assert.equal(r.verified, true);
});

test('bigger topologies are validated: SSDs per box, box names, switch hops for several boxes', () => {
  const over = boxes([...Array.from({ length: 17 }, (_, i) => ssd(`S${i}`)), buffer]);
  assert.match(topologySchema.safeParse(over).error?.message ?? '', /at most 16 SSDs/);
  const dup = boxes([ssd('A0')], [ssd('B0')]);
  dup.boxes[1].name = 'box0';
  assert.match(topologySchema.safeParse(dup).error?.message ?? '', /box names must differ/);
  const oneHop = boxes([ssd('A0'), buffer], [ssd('B0'), buffer]);
  oneHop.ethernet.switchHops = 1;
  assert.throws(() => buildFabric(oneHop, 1), (e: unknown) => e instanceof DconnectError && e.code === 'BAD_TOPOLOGY' && /switchHops >= 2/.test(e.message));
});

test('docs/examples/two-boxes.yaml: two pairs at once, each relayed in its own box', async () => {
  const { fileURLToPath } = await import('node:url');
  const t = loadTopology(fileURLToPath(new URL('../../../docs/examples/two-boxes.yaml', import.meta.url)));
  assert.deepEqual(
    relays(t, ['sda', 'sdb'], ['sdc', 'sdd']),
    [
      ['dcbuf0', true],
      ['dcbuf1', true],
    ],
  );
});
