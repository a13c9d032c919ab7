import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LevelTimer } from '../../src/core/level-timer.js';
import { BandwidthServer } from '../../src/devices/bandwidth-server.js';

test('LevelTimer integrates a level over time, up to now at every read', () => {
  let now = 0;
  const t = new LevelTimer({ now: () => now });
  now = 100;
  assert.equal(t.readPs(), 0);
  t.set(2);
  now = 150;
  assert.equal(t.readPs(), 100, 'the open interval counts up to now');
  t.set(2); // unchanged: nothing restarts
  now = 200;
  t.set(0);
  now = 1000;
  assert.equal(t.readPs(), 200);
  t.set(1);
  now = 1010;
  // A difference of two reads is exact over that interval whatever came before.
  const a = t.readPs();
  now = 1030;
  assert.equal(t.readPs() - a, 20);
});

test('BandwidthServer: busy time spent up to now leaves out work booked ahead', () => {
  let now = 0;
  const s = new BandwidthServer(1000, { now: () => now }); // 1 ns per byte
  s.serve(0, 10); // [0, 10 ns)
  s.serve(0, 10); // [10, 20 ns): one contiguous run
  s.serve(50_000, 5); // [50, 55 ns): a later run
  assert.equal(s.busyPs, 25_000, 'booked');
  now = 5_000;
  assert.equal(s.doneBusyPs(), 5_000);
  now = 30_000;
  assert.equal(s.doneBusyPs(), 20_000);
  now = 52_000;
  assert.equal(s.doneBusyPs(), 22_000);
  now = 60_000;
  assert.equal(s.doneBusyPs(), 25_000);
  s.serve(now, 1);
  assert.equal(s.lastWaitPs, 0);
  s.serve(now, 1);
  assert.equal(s.lastWaitPs, 1_000, 'waited for the request before it');
  // Without a clock it reports what it booked.
  const plain = new BandwidthServer(1000);
  plain.serve(1e9, 10);
  assert.equal(plain.doneBusyPs(), 10_000);
});
