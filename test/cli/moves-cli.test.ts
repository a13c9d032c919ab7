/** Concurrent pairs and burst granularity through `copy`, run in-process (createProgram). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dconnectIn as run } from '../helpers/cli-in-process.js';

const dir = mkdtempSync(join(tmpdir(), 'dconnect-moves-'));
const FOUR = join(dir, 'four.yaml');
writeFileSync(FOUR, 'extends: paper-2012\nname: four-ssds\nboxes:\n  - name: box0\n    slots:\n' + [0, 1, 2, 3].map((i) => `      - { kind: ssd, serial: S${i} }\n`).join('') + '      - { kind: dc-buffer }\n');

test('copy with two pairs moves both at once and reports each move and the aggregate', async () => {
  const r = await run('copy', 'sda', 'sdb', 'sdc', 'sdd', '--length', '4MiB', '--topology', FOUR, '--json');
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.deepEqual(
    j.moves.map((m: { src: string; dst: string; verified: boolean }) => [m.src, m.dst, m.verified]),
    [
      ['sda', 'sdb', true],
      ['sdc', 'sdd', true],
    ],
  );
  assert.equal(j.aggregate.bytes, 8 * 1024 * 1024);
  assert.ok(j.aggregate.mbPerSec > 0 && typeof j.hostLink.upstreamPayloadBytes === 'number');
  const text = await run('copy', 'sda', 'sdb', 'sdc', 'sdd', '--length', '4MiB', '--topology', FOUR);
  assert.match(text.stdout, /2 direct moves at once/);
  assert.match(text.stdout, /sdc:0 -> sdd:0 .* MB\/s {2}via dcbuf0 {2}verified/);
  assert.match(text.stdout, /aggregate {3}[\d.]+ MB\/s/);
});

test('an odd number of devices is refused with exit 2', async () => {
  const r = await run('copy', 'sda', 'sdb', 'sdc', '--length', '4MiB', '--topology', FOUR);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /3 devices given; moves need them in pairs/);
  assert.equal(r.stdout, '');
});

test('copy --granularity burst: the result names it, a capture works, cable faults are recovered', async () => {
  const j = JSON.parse((await run('copy', 'sda', 'sdb', '--length', '1MiB', '--granularity', 'burst', '--json')).stdout);
  assert.equal(j.verified, true);
  assert.equal(j.granularity.mode, 'burst');
  assert.equal(j.fidelity.mode, 'full', 'burst implies the full fidelity');
  const pcap = join(dir, 'burst.pcap');
  const c = await run('copy', 'sda', 'sdb', '--length', '1MiB', '--via', 'host', '--granularity', 'burst', '--capture', 'host', '--pcap', pcap);
  assert.equal(c.code, 0, c.stderr);
  assert.match(c.stderr, /captured \d+ frames on host/);
  // A faulty cable carries a burst as its frames, each drawing its own fault; selective repeat recovers them.
  const f = await run('copy', 'sda', 'sdb', '--length', '1MiB', '--via', 'host', '--granularity', 'burst', '--fault', 'loss=2%,reorder=1%', '--json');
  assert.equal(f.code, 0, f.stderr);
  const lossy = JSON.parse(f.stdout);
  assert.equal(lossy.verified, true);
  assert.equal(lossy.granularity.mode, 'burst');
  assert.ok(lossy.trace['bridge.host'].retransmittedFrames > 0, 'frames were lost and resent');
  // A buffer smaller than a burst breaks the burst model's premise (a burst has each buffer to itself): refused, with the way out.
  const small = await run('copy', 'sda', 'sdb', '--length', '1MiB', '--granularity', 'burst', '--fault', 'buffer=1600@box0.slot2');
  assert.equal(small.code, 2, small.stderr);
  assert.match(small.stderr, /--fault buffer=1600@box0\.slot2 is smaller than a burst \(65536 B\)/);
  assert.match(small.stderr, /hint: run it per TLP: drop --granularity burst/);
  assert.equal(small.stdout, '');
  const fits = await run('copy', 'sda', 'sdb', '--length', '1MiB', '--granularity', 'burst', '--burst-bytes', '16KiB', '--fault', 'buffer=32KiB@box0.slot2', '--json');
  assert.equal(fits.code, 0, fits.stderr);
  assert.equal(JSON.parse(fits.stdout).verified, true);
});
