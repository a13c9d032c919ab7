/**
 * Faults as a library request takes them (MovesRequest.faults, issue 22 item 5): the same specs as
 * `dconnect copy --fault`, wired in one place (runtime/faults.ts simulatedFaults), so a script and the
 * CLI get the same run, and a background run (a worker) takes them as data.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DconnectError } from '../../src/core/errors.js';
import { runMovesInBackground } from '../../src/experiments/background.js';
import { runCopy } from '../../src/runtime/copy.js';
import { connectCable } from '../../src/topology/builder.js';
import { loadTopology } from '../../src/topology/load.js';
import { dconnectIn } from '../helpers/cli-in-process.js';

const MiB = 1 << 20;
const move = { topology: loadTopology('paper-2012'), src: 'sda', srcOffset: 0, dst: 'sdb', dstOffset: 0, lengthBytes: 2 * MiB, via: 'host' as const, seed: 7, fidelity: 'full' as const };
const isBadOption = (e: unknown) => e instanceof DconnectError && e.code === 'BAD_OPTION';

test('a copy with faults is verified, counts what the cables did, and is the run the CLI gives for the same --fault and seed', async () => {
  const faults = ['loss=1%,reorder=1%', 'media-error=sda:100000'];
  const r = runCopy({ ...move, faults });
  assert.equal(r.verified, true);
  assert.ok(r.faults && r.faults.frames > 0 && r.faults.lost > 0 && r.faults.reordered > 0, JSON.stringify(r.faults));
  assert.ok(r.trace['bridge.host'].retransmittedFrames > 0, 'selective repeat made up for the losses');
  const cli = await dconnectIn('copy', 'sda', 'sdb', '--length', '2MiB', '--via', 'host', '--seed', '7', '--fidelity', 'full', '--fault', faults[0], '--fault', faults[1], '--json');
  assert.equal(cli.code, 0, cli.stderr);
  const c = JSON.parse(cli.stdout);
  assert.equal(c.simulatedSeconds, r.simulatedSeconds);
  assert.equal(c.events, r.events);
  assert.match(cli.stderr, new RegExp(`faults: ${r.faults!.lost} lost`));
});

test('faults: down= runs at full fidelity; store faults, faults beside a connect function and bad specs are refused', () => {
  const down = runCopy({ ...move, via: 'dc-buffer', fidelity: undefined, faults: ['down=100us+50us@host'] });
  assert.equal(down.fidelity.mode, 'full');
  assert.equal(down.verified, true);
  assert.throws(() => runCopy({ ...move, faults: ['store-error=sdb:2048'] }), (e: unknown) => isBadOption(e) && /store faults/.test((e as Error).message));
  assert.throws(() => runCopy({ ...move, faults: ['loss=1%'], connect: connectCable }), (e: unknown) => isBadOption(e) && /connect function/.test((e as Error).message));
  assert.throws(() => runCopy({ ...move, faults: ['lose=1%'] }), isBadOption);
});

test('a background run takes faults as data', async () => {
  const { src, srcOffset, dst, dstOffset, ...rest } = move;
  const r = await runMovesInBackground({ ...rest, pairs: [{ src, srcOffset, dst, dstOffset }], faults: ['loss=1%'] });
  assert.equal(r.aggregate.verified, true);
  assert.ok(r.faults && r.faults.lost > 0);
});
