/**
 * The bytes-mode channel (expether/bytes-channel.ts) changes nothing but what crosses the cable: the
 * same moves over it give exactly the results of the default channel (simulated time, events, every
 * trace counter, sha256: the whole JSON), at full fidelity (full-reference.test.ts's three moves) and
 * at fast fidelity, direct and conventional; and every frame really crossed as bytes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BytesCableChannel, connectBytes } from '../../src/expether/bytes-channel.js';
import { runCopy, type CopyRequest } from '../../src/runtime/copy.js';
import { buildFabric, withConnect, type ConnectFn } from '../../src/topology/builder.js';
import { loadTopology } from '../../src/topology/load.js';
import { VirtualScheduler, type Callback, type Scheduler } from '../../src/core/scheduler.js';
import { Frame } from '../../src/ethernet/frame.js';
import { EXPETHER_ETHERTYPE, ExpEtherPdu } from '../../src/expether/pdu.js';

const MiB = 1 << 20;

const cases: Array<{ name: string; lanes: 1 | 8; req: Omit<CopyRequest, 'topology'> }> = [
  { name: 'full, direct, x1, 2 MiB', lanes: 1, req: { src: 'sda', srcOffset: 0, dst: 'sdb', dstOffset: 0, lengthBytes: 2 * MiB, via: 'dc-buffer', seed: 3, fidelity: 'full' } },
  { name: 'full, conventional, x1, 2 MiB', lanes: 1, req: { src: 'sda', srcOffset: 0, dst: 'sdb', dstOffset: 0, lengthBytes: 2 * MiB, via: 'host', seed: 3, fidelity: 'full' } },
  {
    name: 'full, direct, x8, depth 3, 256 KiB chunks, offsets, partial last chunk',
    lanes: 8,
    req: { src: 'sda', srcOffset: 4096 * 5, dst: 'sdb', dstOffset: MiB, lengthBytes: MiB + 4096 * 3, via: 'dc-buffer', seed: 11, depth: 3, chunkBytes: 256 * 1024, fidelity: 'full' },
  },
  { name: 'fast, direct, x8, 8 MiB', lanes: 8, req: { src: 'sda', srcOffset: 0, dst: 'sdb', dstOffset: 0, lengthBytes: 8 * MiB, via: 'dc-buffer', seed: 5, fidelity: 'fast' } },
  { name: 'fast, conventional, x1, 6 MiB', lanes: 1, req: { src: 'sda', srcOffset: 0, dst: 'sdb', dstOffset: 0, lengthBytes: 6 * MiB, via: 'host', seed: 9, fidelity: 'fast' } },
];

function run(c: (typeof cases)[number]): string {
  const topology = loadTopology('paper-2012');
  topology.host.link.lanes = c.lanes;
  return JSON.stringify(runCopy({ topology, ...c.req }));
}

for (const c of cases) {
  test(`bytes-mode channel gives the default channel's results exactly: ${c.name}`, () => {
    const plain = run(c);
    const channels: BytesCableChannel[] = [];
    const recording: ConnectFn = (a, b, ns) => {
      const ch = connectBytes(a, b, ns);
      channels.push(ch);
      return ch;
    };
    const bytes = withConnect(recording, () => run(c));
    assert.equal(bytes, plain);
    const parsed = JSON.parse(plain) as { verified: boolean };
    assert.equal(parsed.verified, true);
    // The fabric was built with bytes cables (one per port pair) and every frame crossed encoded.
    assert.ok(channels.length >= 5, `${channels.length} bytes channels`);
    const frames = channels.reduce((n, ch) => n + ch.framesEncoded, 0);
    assert.ok(frames > 1000, `${frames} frames encoded`);
  });
}

test('buildFabric accepts (topology, seed) and (topology, { seed, scheduler, connect }); the default is the plain cable', () => {
  const t = loadTopology('paper-2012');
  const plain = buildFabric(t, 1);
  // (npm test's bytes-mode pass, test/helpers/bytes-mode.ts, makes the bytes channel the default.)
  assert.equal(plain.hostBridge.eth.channel?.constructor.name, process.env.DCONNECT_TEST_CHANNEL === 'bytes' ? 'BytesCableChannel' : 'CableChannel');
  const names: string[] = [];
  const f = buildFabric(t, {
    seed: 1,
    scheduler: plain.scheduler,
    connect: (a, b, ns, name) => {
      names.push(name);
      return connectBytes(a, b, ns);
    },
  });
  assert.equal(f.scheduler, plain.scheduler, 'the injected scheduler is used');
  assert.ok(f.hostBridge.eth.channel instanceof BytesCableChannel);
  for (const s of f.slots) assert.ok(s.bridge.eth.channel instanceof BytesCableChannel);
  assert.deepEqual(names, ['sw0.p1<->sw1.p0', 'hostBridge<->sw0.p0', 'box0.slot0<->sw1.p1', 'box0.slot1<->sw1.p2', 'box0.slot2<->sw1.p3']);
  assert.throws(() => buildFabric(t, { seed: 1, connect: (a) => a.channel! }), /not both ports' channel/);
});

test('any Scheduler may be injected: the components schedule through it', () => {
  // A scheduler that is not a VirtualScheduler (as live/'s real-time one is not), counting what it is asked.
  class Counting implements Scheduler {
    readonly inner = new VirtualScheduler();
    scheduled = 0;
    now(): number {
      return this.inner.now();
    }
    schedule(delayPs: number, fn: Callback): void {
      this.scheduled++;
      this.inner.schedule(delayPs, fn);
    }
    scheduleTimeout(delayPs: number, fn: Callback): void {
      this.schedule(delayPs, fn);
    }
  }
  const counting = new Counting();
  const f = buildFabric(loadTopology('paper-2012'), { seed: 1, scheduler: counting, connect: connectBytes });
  assert.equal(f.scheduler, counting);
  assert.equal(counting.scheduled, 0, 'building schedules nothing');
  // A bare ACK from the host bridge to slot 0's bridge: cable, two switches, cable, each an event on the injected scheduler.
  const pdu = new ExpEtherPdu('ack', -1, -1, null, null);
  f.hostBridge.eth.send(new Frame(f.slots[0].bridge.mac, f.hostBridge.mac, f.hostBridge.groupId, EXPETHER_ETHERTYPE, pdu, pdu.payloadBytes()));
  counting.inner.run();
  assert.ok(counting.scheduled >= 4, `${counting.scheduled} events scheduled`);
  assert.equal(counting.inner.eventsExecuted, counting.scheduled);
});

test('bytes-mode channel through the harness option: two boxes, two pairs at once, fast and full, same JSON as the default channel', async () => {
  const { runMoves } = await import('../../src/runtime/moves.js');
  const { fileURLToPath } = await import('node:url');
  const topology = loadTopology(fileURLToPath(new URL('../../../docs/examples/two-boxes.yaml', import.meta.url)));
  for (const fidelity of ['fast', 'full'] as const) {
    const req = {
      topology,
      pairs: [
        { src: 'sda', srcOffset: 0, dst: 'sdc', dstOffset: 0 },
        { src: 'sdb', srcOffset: 0, dst: 'sdd', dstOffset: 0 },
      ],
      lengthBytes: 2 * MiB,
      via: 'dc-buffer' as const,
      seed: 2,
      fidelity,
    };
    const plain = JSON.stringify(runMoves(req));
    const bytes = JSON.stringify(runMoves({ ...req, connect: connectBytes }));
    assert.equal(bytes, plain, fidelity);
  }
});
