/**
 * The live fabric at burst granularity (`dconnect up --granularity`): unpaced fabrics run bursts by
 * default, bursts cross the UDP channel as burst records, and where a cable has injected faults each
 * frame draws its own (the runs no fault hit still cross as burst records; selective repeat recovers
 * the frames lost), copies verify
 * and say which granularity moved them, and options that cannot hold are refused before anything
 * starts. Every command runs with a time limit; state directories are removed and nodes stopped.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { controlRequest } from '../../src/live/control-http.js';
import { dconnect, mustRun } from '../helpers/cli.js';

const MiB = 1 << 20;
const ok = mustRun;

interface Counters {
  transport: { burstRecordsReceived: number; readBurstRecordsReceived: number; framesReceived: number; framesSent: number; lost: number };
  trace: Record<string, Record<string, number>>;
}

const counters = (state: string): Promise<Counters> => controlRequest<Counters>({ socketPath: join(state, 'host.sock') }, 'GET', '/counters');

describe('live fabric at burst granularity', { timeout: 240_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'dconnect-bursts-'));
  const state = join(dir, 's');
  let upText = '';

  before(() => {
    upText = ok(['up', '--state', state, '--topology', 'paper-2012-live', '--set', `ssd.capacityBytes=${256 * MiB}`]).stderr;
  });
  after(() => {
    dconnect(['down', '--state', state]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('an unpaced fabric runs bursts by default and says so in up and status', () => {
    assert.match(upText, /pace none, bursts of up to 64 KiB/);
    const s = JSON.parse(ok(['status', '--state', state, '--json']).stdout);
    assert.equal(s.burstBytes, 65536);
    assert.match(ok(['status', '--state', state]).stdout, /bursts of up to 64 KiB/);
  });

  it('a conventional copy crosses the host cable as burst records and verifies; its result names the granularity', async () => {
    const { burstRecordsReceived: before, readBurstRecordsReceived: readsBefore, framesSent: sentBefore } = (await counters(state)).transport;
    const out = ok(['copy', 'sda', 'sdb:64MiB', '--length', '8MiB', '--via', 'host', '--live', '--state', state, '--json']).stdout;
    const job = JSON.parse(out);
    assert.equal(job.state, 'done');
    assert.equal(job.result.verified, true);
    assert.deepEqual(job.result.granularity, { mode: 'burst', burstBytes: 65536, relativeErrorBound: job.result.granularity.relativeErrorBound });
    const after = (await counters(state)).transport;
    // The source SSD's writes into host memory arrive as bursts: 8 MiB in 64 KiB bursts is at least 128.
    assert.ok(after.burstRecordsReceived - before >= 128, `burst records received: ${after.burstRecordsReceived - before}`);
    // The destination SSD reads host memory with several requests at once (all its tags are free when a command starts): they cross whole.
    assert.ok(after.readBurstRecordsReceived - readsBefore > 0, `read burst records received: ${after.readBurstRecordsReceived - readsBefore}`);
    // The frames those records stand for, counted as per-TLP's would be: 8 MiB of 1 KiB completions, their requests and ACKs.
    assert.ok(after.framesSent - sentBefore < 16_384, `frames sent: ${after.framesSent - sentBefore}`);
    const text = ok(['copy', 'sdb:64MiB', 'sda:128MiB', '--length', '2MiB', '--via', 'host', '--live', '--state', state]).stdout;
    assert.match(text, /bursts of up to 64 KiB/);
  });

  it('a direct copy verifies, its data never crossing the host link', () => {
    const job = JSON.parse(ok(['copy', 'sda', 'sdb', '--length', '16MiB', '--live', '--state', state, '--json']).stdout);
    assert.equal(job.state, 'done');
    assert.equal(job.result.verified, true);
    assert.ok(job.result.hostLink.downstreamPayloadBytes < MiB, `host link carried ${job.result.hostLink.downstreamPayloadBytes} B`);
  });
});

describe('live fabric at burst granularity with loss and reordering on every cable', { timeout: 240_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'dconnect-bursts-loss-'));
  const state = join(dir, 's');
  let upText = '';

  before(() => {
    upText = ok(['up', '--state', state, '--topology', 'paper-2012-live', '--set', `ssd.capacityBytes=${64 * MiB}`, '--fault', 'loss=1%,reorder=1%', '--seed', '3']).stderr;
  });
  after(() => {
    dconnect(['down', '--state', state]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('faults on the box\'s own cables and between processes keep bursts: each frame draws its fault, lost ones are resent, and the copy verifies', async () => {
    assert.match(upText, /bursts of up to 64 KiB/);
    const job = JSON.parse(ok(['copy', 'sda', 'sdb:16MiB', '--length', '4MiB', '--via', 'host', '--live', '--state', state, '--json']).stdout);
    assert.equal(job.state, 'done');
    assert.equal(job.result.verified, true);
    const c = await counters(state);
    assert.ok(c.transport.burstRecordsReceived > 0, 'the runs of frames no fault hit cross as burst records');
    assert.ok(c.transport.lost > 0, 'frames were lost between the processes');
    assert.ok(c.trace['bridge.host'].retransmittedFrames > 0, 'and resent');
  });
});

describe('live granularity options are checked before anything starts', { timeout: 60_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'dconnect-bursts-opts-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  const refused: [string, string[], RegExp][] = [
    ['bursts paced', ['--pace', 'model', '--time-dilation', '50', '--granularity', 'burst'], /--granularity burst runs unpaced/],
    ['a burst size at per-TLP granularity', ['--granularity', 'tlp', '--burst-bytes', '64KiB'], /--burst-bytes applies to --granularity burst/],
    ['a burst size where pacing makes per-TLP the default', ['--pace', 'model', '--time-dilation', '50', '--burst-bytes', '64KiB'], /the default with --pace model/],
    ['a burst size out of range', ['--burst-bytes', '3KiB'], /outside 4KiB\.\.1MiB/],
  ];
  for (const [what, args, message] of refused) {
    it(`refuses ${what}, naming the problem, and writes nothing`, () => {
      const state = join(dir, what.replace(/\W+/g, '-'));
      const r = dconnect(['up', '--state', state, '--topology', 'paper-2012-live', ...args]);
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, message);
      assert.ok(!existsSync(join(state, 'fabric.json')), 'no settings written');
    });
  }
});
