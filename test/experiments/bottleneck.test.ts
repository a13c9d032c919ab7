import { test } from 'node:test';
import assert from 'node:assert/strict';
import { limitOf, readWaits, resourceName, utilizations, type LimitInput } from '../../src/experiments/bottleneck.js';

/**
 * Synthetic results: a move of 1 ms (1e9 ps) between two drives that are not in box0, so nothing
 * named can come from slot numbers; every name must come from the devices table.
 */
const E = 1e9;
const devices = { 'box1.slot5': 'sdk', 'box1.slot6': 'sdl', 'box1.slot7': 'dcbuf1' };

/** A drive's counters: everything idle unless given. */
function drive(c: Record<string, number>): Record<string, number> {
  return {
    commands: 10,
    readBusyPs: 0,
    writeBusyPs: 0,
    'dma.mrd': 0,
    'dma.bytesRead': 0,
    'dma.bytesWritten': 0,
    'dma.readTagPs': 0,
    'dma.tagsExhaustedPs': 0,
    commandPs: E,
    idlePs: 0,
    ...c,
  };
}

function result(trace: Record<string, Record<string, number>>, depth = 3): LimitInput {
  const base: Record<string, Record<string, number>> = {
    'hostLink.upstream': { busyPs: 0.01 * E },
    'box1.slot5.link.upstream': { busyPs: 0.3 * E, creditWaitPs: 0 },
    'box1.slot6.link.upstream': { busyPs: 0.02 * E, creditWaitPs: 0 },
    'box1.slot7.link.downstream': { busyPs: 0.4 * E, creditWaitPs: 0, readQueuedPs: 0 },
    'eth.sw1.box1.p3': { busyPs: 0.5 * E, readQueuedPs: 0 },
    'eth.box1.slot5': { busyPs: 0.3 * E },
    'bridge.box1.slot5': { windowWaitPs: 0 },
    'bridge.box1.slot7': { windowWaitPs: 0, readQueuedPs: 0 },
    'dcbuffer.box1.slot7': { ddrBusyPs: 0.45 * E, readQueuedPs: 0 },
    'ssd.box1.slot5': drive({ readBusyPs: 0.3 * E, 'dma.bytesWritten': 500e3 }),
    'ssd.box1.slot6': drive({ writeBusyPs: 0.55 * E }),
  };
  for (const [k, v] of Object.entries(trace)) base[k] = { ...base[k], ...v };
  return { trace: base, devices, simulatedSeconds: E / 1e12, depth, hostLanes: 4 };
}

test('names come from the trace key and the devices table, for any box and slot', () => {
  assert.equal(resourceName('ssd.box1.slot5', devices), 'sdk');
  assert.equal(resourceName('box1.slot5.link.upstream', devices), 'sdk link upstream');
  assert.equal(resourceName('box1.slot7.link.downstream', devices), 'dcbuf1 link downstream');
  assert.equal(resourceName('eth.box1.slot6', devices), "sdl's bridge Ethernet port");
  assert.equal(resourceName('eth.sw1.box1.p3', devices), 'Ethernet port sw1.box1.p3');
  assert.equal(resourceName('bridge.box1.slot7', devices), "dcbuf1's bridge");
  assert.equal(resourceName('dcbuffer.box1.slot7', devices), 'dcbuf1 DDR');
  assert.equal(resourceName('hostLink.downstream', devices, 1), 'host link x1 downstream');
  assert.equal(resourceName('eth.hostBridge', devices), "host bridge's Ethernet port");
  assert.equal(resourceName('bridge.host', devices), 'host bridge');
  // A slot the table does not know is named by its prefix; box0.slot0 is not assumed to be sda.
  assert.equal(resourceName('ssd.box0.slot0', { 'box0.slot0': 'sdc' }), 'sdc');
  assert.equal(resourceName('ssd.box2.slot0', devices), 'box2.slot0');

  const u = utilizations(result({}));
  assert.deepEqual(u.slice(0, 3).map((x) => x.resource), ['sdl flash write', 'Ethernet port sw1.box1.p3', 'dcbuf1 DDR']);
  assert.ok(u.every((x) => !/box0|slot\d/.test(x.resource.replace('sw1.box1.p3', ''))), 'no slot numbers in names');
});

test('a resource busy 95% of the time is the limit', () => {
  const l = limitOf(result({ 'ssd.box1.slot6': { writeBusyPs: 0.99 * E } }));
  assert.equal(l.saturated, true);
  assert.equal(l.binds, 'saturated');
  assert.equal(l.resource, 'sdl flash write');
  assert.match(l.explanation, /^sdl flash write is saturated \(99% busy\)$/);
});

test('read tags full nearly all the time bind, said with tags x bytes / round trip and where requests queued', () => {
  // sdl: 7.8 tags in use on average, 1000 reads of 512 B, all tags busy 97% of the time.
  const reads = 1000;
  const l = limitOf(
    result({
      'ssd.box1.slot6': { 'dma.mrd': reads, 'dma.bytesRead': 512 * reads, 'dma.readTagPs': 7.8 * E, 'dma.tagsExhaustedPs': 0.97 * E, commandPs: 2.2 * E },
      'box1.slot7.link.downstream': { readQueuedPs: 1.2e6 * reads },
      'eth.sw1.box1.p3': { readQueuedPs: 0.8e6 * reads },
      'bridge.box1.slot7': { readQueuedPs: 0.02e6 * reads },
    }),
  );
  assert.equal(l.saturated, false);
  assert.equal(l.binds, 'read-tags');
  // 7.8 tags x 512 B over 7.8 us = 512 MB/s: Little's law, from the counters.
  assert.match(l.explanation, /^read-tag bound: sdl's read tags all in use 97% of the time: 7\.8 tags x 512 B in flight over a 7\.8 us mean read round trip = 512 MB\/s/);
  assert.match(l.explanation, /requests queued 2\.0 us of it: dcbuf1 link downstream 1\.2 us, Ethernet port sw1\.box1\.p3 0\.8 us\)/);
  assert.doesNotMatch(l.explanation, /dcbuf1's bridge/, 'a queue under a tenth of the wait is left out');
  assert.match(l.explanation, /2\.2 commands in work, more add no tags/);
  assert.match(l.explanation, /busiest: sdl flash write 55%$/);
  assert.deepEqual(
    readWaits(result({ 'eth.sw1.box1.p3': { readQueuedPs: 5 }, 'ssd.box1.slot6': { 'dma.mrd': 5 } })).map((w) => w.where),
    ['Ethernet port sw1.box1.p3'],
  );
});

test('a writer held by the ExpEther window binds, and credits when they wait on their own', () => {
  const win = limitOf(
    result({
      'ssd.box1.slot5': { 'dma.bytesWritten': 97e3 },
      'bridge.box1.slot5': { windowWaitPs: 0.98 * E },
      'box1.slot5.link.upstream': { creditWaitPs: 0.98 * E },
      'ssd.box1.slot6': { idlePs: 0.6 * E, writeBusyPs: 0.05 * E },
    }),
  );
  assert.equal(win.binds, 'expether-window');
  assert.match(win.explanation, /^ExpEther window bound: sdk's bridge held its TLPs for the peer's window of unacknowledged frames 98% of the time \(its link waited for credits 98%\); sdk wrote 97 MB\/s/);

  const credits = limitOf(
    result({
      'bridge.box1.slot5': { windowWaitPs: 0.2 * E },
      'box1.slot5.link.upstream': { creditWaitPs: 0.8 * E },
      'ssd.box1.slot5': { idlePs: 0.12 * E },
      'ssd.box1.slot6': { idlePs: 0.6 * E, writeBusyPs: 0.05 * E },
    }),
  );
  assert.equal(credits.binds, 'credits');
  // 80% of the time is 91% of the 88% sdk had work: the window of the drive the other waits on.
  assert.match(credits.explanation, /^credit bound: sdk link upstream waited for flow-control credits 80% of the time \(its bridge waited for the ExpEther window 20%\)/);
});

test("a reader's completions held by the sending bridge's window: that window binds, named by the relay", () => {
  const reads = 1000;
  const held = (relay: string, bridge: string) =>
    limitOf({
      ...result({
        'ssd.box1.slot6': { 'dma.mrd': reads, 'dma.bytesRead': 512 * reads, 'dma.readTagPs': 7.9 * E, 'dma.tagsExhaustedPs': 0.97 * E },
        [bridge]: { windowWaitPs: 0.94 * E },
      }),
      relay,
    });
  const viaBuffer = held('dcbuf1', 'bridge.box1.slot7');
  assert.equal(viaBuffer.binds, 'expether-window');
  assert.match(viaBuffer.explanation, /^ExpEther window bound: dcbuf1's bridge held sdl's read completions for its window of unacknowledged frames 94% of the time, and sdl's read tags were all in use 97%: 7\.9 tags x 512 B over a 7\.9 us round trip = 512 MB\/s/);
  assert.match(held('host memory', 'bridge.host').explanation, /^ExpEther window bound: the host bridge held sdl's read completions/);
  // Another bridge's window does not explain sdl's tags.
  assert.equal(held('dcbuf1', 'bridge.host').binds, 'read-tags');
});

test('commands in flight bind when every drive waits for commands, or when they are always at the drives and no window is full', () => {
  const one = limitOf(result({ 'ssd.box1.slot5': { idlePs: 0.7 * E, commandPs: 0.3 * E }, 'ssd.box1.slot6': { idlePs: 0.34 * E, commandPs: 0.66 * E } }, 1));
  assert.equal(one.binds, 'commands');
  assert.match(one.explanation, /^commands-in-flight bound: 1 in flight \(one command at a time: each chunk is read, then written, with no overlap\) left every drive without a command part of the time \(sdl 34%, sdk 70%\)/);

  const latencies = limitOf(result({ 'ssd.box1.slot5': { commandPs: 1.5 * E }, 'ssd.box1.slot6': { commandPs: 1.1 * E, idlePs: 0.14 * E } }));
  assert.equal(latencies.binds, 'commands');
  assert.match(latencies.explanation, /^commands-in-flight bound: 3 in flight were at the drives 87% of the time \(sdk 1\.5, sdl 1\.1 on average\): more would cover their fixed latencies/);

  // Read tags full 65% of the time share the limit: more commands help only in part.
  const shared = limitOf(
    result({
      'ssd.box1.slot5': { commandPs: 1.5 * E },
      'ssd.box1.slot6': { commandPs: 1.3 * E, 'dma.mrd': 100, 'dma.bytesRead': 51200, 'dma.readTagPs': 5 * E, 'dma.tagsExhaustedPs': 0.65 * E },
    }),
  );
  assert.equal(shared.binds, 'commands');
  assert.match(shared.explanation, /sdl's read tags full 65% of the time, so more commands help only in part/);
});

test('nothing full and the commands mostly away from the drives: latency-bound, with the numbers', () => {
  const l = limitOf(result({ 'ssd.box1.slot5': { commandPs: 0.8 * E, idlePs: 0.05 * E }, 'ssd.box1.slot6': { commandPs: 0.7 * E, idlePs: 0.05 * E } }));
  assert.equal(l.binds, 'latency');
  assert.match(l.explanation, /^latency-bound: no resource or window was full most of the time, and the commands in flight were at the drives 50% of it \(sdk 0\.8, sdl 0\.7 on average\)/);
});

test('several moves: the analysis reads every drive and counts depth per move', () => {
  const r = result({ 'ssd.box1.slot5': { commandPs: 1.4 * E }, 'ssd.box1.slot6': { commandPs: 1.4 * E } }, 2);
  r.trace['ssd.box2.slot0'] = drive({ commandPs: 0.6 * E });
  r.trace['ssd.box2.slot1'] = drive({ commandPs: 0.6 * E });
  const l = limitOf({ ...r, devices: { ...devices, 'box2.slot0': 'sdm', 'box2.slot1': 'sdn' } });
  assert.equal(l.binds, 'commands');
  assert.match(l.explanation, /^commands-in-flight bound: 4 in flight were at the drives 100% of the time \(sdk 1\.4, sdl 1\.4, sdm 0\.6, sdn 0\.6 on average\)/);
});
