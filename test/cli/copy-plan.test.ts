/** `checkCopy` (cli/commands/copy.ts): what a copy does, chosen from its ends and --live/--resume, and the refusals that depend on values. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkCopy, type CopyOptions } from '../../src/cli/commands/copy.js';
import { DconnectError } from '../../src/core/errors.js';

const base: CopyOptions = { topology: 'paper-2012', seed: '1', state: '.dconnect', fidelity: 'fast', granularity: 'tlp', via: 'dc-buffer', verify: true };
const mode = (src: string | undefined, dst: string | undefined, o: Partial<CopyOptions> = {}, more: string[] = []) => checkCopy(src, dst, more, { ...base, ...o }).mode;
const refusal = (src: string | undefined, dst: string | undefined, o: Partial<CopyOptions> = {}, more: string[] = []): string => {
  try {
    checkCopy(src, dst, more, { ...base, ...o });
  } catch (e) {
    assert.ok(e instanceof DconnectError);
    return e.message;
  }
  assert.fail('not refused');
};

test('each kind of end, with and without --live, picks its mode', () => {
  assert.equal(mode('sda', 'sdb', { length: '1MiB' }), 'ranges');
  assert.equal(mode('sda', 'sdb', { length: '1MiB' }, ['sdc', 'sdd']), 'ranges');
  assert.equal(mode('sda', 'sdb', { length: '1MiB', live: true }), 'live-range');
  assert.equal(mode('sda', 'net:client0', { length: '1MiB' }), 'nic');
  assert.equal(mode('net:client0', 'sdb:4KiB', { length: '1MiB' }), 'nic');
  assert.equal(mode('sda:/data', 'sdb:/backup', { recursive: true }), 'files');
  assert.equal(mode('sda:/data', 'sdb:/backup', { live: true }), 'live-files');
  assert.equal(mode(undefined, undefined, { resume: 'j3', live: true }), 'resume');
  assert.deepEqual(checkCopy(undefined, undefined, [], { ...base, resume: 'j3' }), { mode: 'resume', job: 'j3' });
});

test('the refusals that depend on values, each naming the problem', () => {
  assert.match(refusal('sda', undefined, { resume: 'j3' }), /--resume takes no devices/);
  assert.match(refusal('sda', undefined, { length: '1MiB' }), /needs a source and a destination/);
  assert.match(refusal('sda', 'sdb', { length: '1MiB', force: true }), /--force applies to file copies/);
  assert.match(refusal('sda', 'sdb'), /needs --length/);
  assert.match(refusal('sda', 'net:client0', { length: '1MiB', live: true }), /simulation only/);
  assert.match(refusal('sda', 'sdb', { length: '1MiB', live: true }, ['sdc', 'sdd']), /one pair per job/);
  assert.match(refusal('sda', 'net:client0', { length: '1MiB', traceEvents: 't.json' }), /not traced yet/);
  assert.match(refusal('sda', 'net:client0', { length: '1MiB', granularity: 'burst' }), /run per TLP only/);
});
