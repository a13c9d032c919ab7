import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DconnectError } from '../../src/core/errors.js';
import type { HostDevice, Relay } from '../../src/host/dc/manager.js';
import { planRelay, relayDistance } from '../../src/host/dc/relay-planner.js';

const dev = (name: string, box: string): HostDevice => ({ name, kind: 'ssd', box, slot: 0, bdf: '00:00.0', bar0: 0 });
const relay = (name: string, via: string, device: string, box: string): Relay => ({ name, via, device, box, slot: 0, busAddress: 0, sizeBytes: 1 << 20 });

const sda = dev('sda', 'box0');
const sdb = dev('sdb', 'box0');
const sdc = dev('sdc', 'box1');
const dcbuf0 = relay('dcbuf0', 'dc-buffer', 'dcbuf0', 'box0');
const dcbuf1 = relay('dcbuf1', 'dc-buffer', 'dcbuf1', 'box1');
const sdaCmb = relay('sda CMB', 'cmb', 'sda', 'box0');
const sdbCmb = relay('sdb CMB', 'cmb', 'sdb', 'box0');
const sdcCmb = relay('sdc CMB', 'cmb', 'sdc', 'box1');
const all = [dcbuf0, dcbuf1, sdaCmb, sdbCmb, sdcCmb];

test('distance: switch traversals of the data, 0 for a leg the relay\'s own device takes, 1 within a box, 3 between boxes', () => {
  assert.equal(relayDistance(sda, dcbuf0, sdb), 2);
  assert.equal(relayDistance(sda, sdbCmb, sdb), 1);
  assert.equal(relayDistance(sda, sdaCmb, sdb), 1);
  assert.equal(relayDistance(sda, dcbuf1, sdb), 6);
  assert.equal(relayDistance(sda, sdcCmb, sdc), 3);
});

test('nearest: a CMB in the move beats a DC buffer; of the source\'s and the destination\'s, the destination\'s (posted writes cross, no read round trips)', () => {
  assert.equal(planRelay(all, sda, sdb, { nearest: true }).name, 'sdb CMB');
  assert.equal(planRelay(all, sdb, sda, { nearest: true }).name, 'sda CMB');
  assert.equal(planRelay(all, sda, sdc, { nearest: true }).name, 'sdc CMB');
  assert.equal(planRelay([dcbuf0, dcbuf1, sdaCmb], sda, sdc, { nearest: true }).name, 'sda CMB', 'the source\'s when the destination has none');
});

test('by sort: dc-buffer ranks the DC buffers as relayFor always did (distance, then load, then order); cmb the CMBs', () => {
  assert.equal(planRelay(all, sda, sdb, { via: 'dc-buffer' }).name, 'dcbuf0');
  assert.equal(planRelay(all, sdc, sdc, { via: 'dc-buffer' }).name, 'dcbuf1');
  const two = [dcbuf0, relay('dcbuf2', 'dc-buffer', 'dcbuf2', 'box0')];
  assert.equal(planRelay(two, sda, sdb, { via: 'dc-buffer' }).name, 'dcbuf0');
  assert.equal(planRelay(two, sda, sdb, { via: 'dc-buffer' }, new Map([['dcbuf0', 1]])).name, 'dcbuf2', 'the less loaded at equal distance');
  assert.equal(planRelay(all, sda, sdb, { via: 'cmb' }).name, 'sdb CMB');
});

test('nothing to choose from is an error naming the fix', () => {
  const err = (f: () => unknown, re: RegExp) => assert.throws(f, (e: unknown) => e instanceof DconnectError && re.test(`${e.message} ${e.hint}`));
  err(() => planRelay([dcbuf0], sda, sdb, { via: 'cmb' }), /Controller Memory Buffer.*cmbSizeBytes/);
  err(() => planRelay([sdbCmb], sda, sdb, { via: 'dc-buffer' }), /no DC buffer.*--via host/);
  err(() => planRelay([], sda, sdb, { nearest: true }), /no relay/);
});
