/**
 * The live fabric end to end, as a user runs it: `dconnect up` starts a host and a box process on
 * loopback, copies run as jobs through the control API with real sockets and file-backed drives, a
 * killed box is noticed and the job resumes, and `down` stops everything. Every command runs with a
 * time limit; the state directory is removed and the nodes stopped whatever happens.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileRange, sha, writeRange } from '../helpers/drive-files.js';
import { controlRequest } from '../../src/live/control-http.js';
import { NODE_HEAP_FLAGS } from '../../src/live/supervisor.js';
import { CLI, COMMAND_MS, dconnect, mustRun } from '../helpers/cli.js';

const ok = (args: string[]): string => mustRun(args).stdout;

const MiB = 1 << 20;

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('live fabric (pace none): up, copy, kill and resume, down', { timeout: 240_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'dconnect-live-'));
  const state = join(dir, 's');
  const sdaFile = join(state, 'drives', 'box0.slot0.img');
  const sdbFile = join(state, 'drives', 'box0.slot1.img');
  const capacity = 256 * MiB;

  before(() => {
    ok(['up', '--state', state, '--topology', 'paper-2012-live', '--set', `ssd.capacityBytes=${capacity}`, '--pace', 'none']);
  });
  after(() => {
    dconnect(['down', '--state', state]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('up starts a host and a box process, each with its addresses; status --json lists them', () => {
    const s = JSON.parse(ok(['status', '--state', state, '--json']));
    assert.equal(s.topology, 'paper-2012-live');
    assert.equal(s.pace, 'none');
    assert.deepEqual(
      s.nodes.map((n: { name: string; role: string }) => [n.name, n.role]),
      [
        ['host', 'host'],
        ['box0', 'box'],
      ],
    );
    for (const n of s.nodes) {
      assert.ok(n.running && pidAlive(n.pid), `${n.name} runs`);
      assert.equal(n.udp.host, '127.0.0.1');
      assert.ok(n.udp.port > 0);
      // Started with the heap flags that spare a node a full collection every ~70 ms (supervisor.ts).
      const cmdline = `/proc/${n.pid}/cmdline`;
      if (existsSync(cmdline)) {
        const args = readFileSync(cmdline, 'utf8').split('\0');
        for (const f of NODE_HEAP_FLAGS) assert.ok(args.includes(f), `${n.name} runs with ${f}: ${args.join(' ')}`);
      }
    }
    assert.equal(s.nodes[0].control.socket, join(state, 'host.sock'));
    assert.ok(existsSync(sdaFile) && existsSync(sdbFile), 'the drives are files in the state directory');
  });

  it('a second up on the same state directory says it is running and starts nothing', () => {
    const before = JSON.parse(ok(['status', '--state', state, '--json'])).nodes.map((n: { pid: number }) => n.pid);
    const r = dconnect(['up', '--state', state]);
    assert.equal(r.status, 0);
    assert.match(r.stderr, /already running/);
    const afterPids = JSON.parse(ok(['status', '--state', state, '--json'])).nodes.map((n: { pid: number }) => n.pid);
    assert.deepEqual(afterPids, before);
  });

  it('devices --live lists what the host enumerated over the network', () => {
    const d = JSON.parse(ok(['devices', '--live', '--state', state, '--json']));
    // The simulated `devices --json`'s shape: every kind's rows, each with its kind.
    assert.deepEqual(
      d.devices.map((b: { name: string; kind: string; capacityBytes: number }) => [b.name, b.kind, b.capacityBytes]),
      [
        ['sda', 'ssd', capacity],
        ['sdb', 'ssd', capacity],
        ['dcbuf0', 'dc-buffer', 64 << 20],
      ],
    );
  });

  it('a direct copy moves the file bytes through the box, verified, with almost nothing on the host link', () => {
    const data = randomBytes(12 * MiB);
    writeRange(sdaFile, 4 * MiB, data);
    const job = JSON.parse(ok(['copy', 'sda:4MiB', 'sdb:8MiB', '--length', '12MiB', '--live', '--state', state, '--json']));
    assert.equal(job.state, 'done');
    assert.equal(job.result.mode, 'direct');
    assert.equal(job.result.relay, 'dcbuf0');
    assert.equal(job.result.verified, true);
    assert.equal(job.result.srcSha256, sha(data));
    assert.equal(job.result.dstSha256, sha(data));
    assert.equal(sha(fileRange(sdbFile, 8 * MiB, 12 * MiB)), sha(data), 'the destination file holds the bytes');
    const hostBytes = job.result.hostLink.upstreamPayloadBytes + job.result.hostLink.downstreamPayloadBytes;
    assert.ok(hostBytes < 0.02 * data.length, `${hostBytes} B crossed the host link: commands and completions only`);
  });

  it('a conventional copy crosses the host link (and the socket) twice, verified', () => {
    const data = randomBytes(4 * MiB);
    writeRange(sdaFile, 64 * MiB, data);
    const job = JSON.parse(ok(['copy', 'sda:64MiB', 'sdb:64MiB', '--length', '4MiB', '--via', 'host', '--live', '--state', state, '--json']));
    assert.equal(job.state, 'done');
    assert.equal(job.result.mode, 'conventional');
    assert.equal(job.result.verified, true);
    assert.equal(sha(fileRange(sdbFile, 64 * MiB, 4 * MiB)), sha(data));
    assert.ok(job.result.hostLink.upstreamPayloadBytes >= data.length && job.result.hostLink.downstreamPayloadBytes >= data.length);
  });

  it('copy --live --capture host,box0.slot2 --pcap FILE records the host\'s cable (host node) and the DC buffer\'s (box node) in one file, merged by time; an unknown link is refused', async () => {
    // A client names a file, never a path: a path is refused before anything is asked, and the file goes into <state>/captures/.
    const outside = dconnect(['copy', 'sda', 'sdb', '--length', '1MiB', '--live', '--state', state, '--capture', 'host', '--pcap', join(dir, 'elsewhere.pcap')]);
    assert.equal(outside.status, 2);
    assert.match(outside.stderr, /not a plain file name/);
    assert.ok(!existsSync(join(dir, 'elsewhere.pcap')));
    // Several cables need pcapng (a classic pcap could not say which cable a frame was on): refused up front.
    const classic = dconnect(['copy', 'sda', 'sdb', '--length', '1MiB', '--live', '--state', state, '--capture', 'host,box0.slot2', '--pcap', 'live.pcap']);
    assert.equal(classic.status, 2);
    assert.match(classic.stderr, /needs pcapng/);
    const pcap = join(state, 'captures', 'live.pcapng');
    const job = JSON.parse(ok(['copy', 'sda:64MiB', 'sdb:96MiB', '--length', '1MiB', '--live', '--state', state, '--json', '--capture', 'host,box0.slot2', '--pcap', 'live.pcapng']));
    assert.equal(statSync(pcap).mode & 0o777, 0o600);
    const again = dconnect(['copy', 'sda', 'sdb', '--length', '1MiB', '--live', '--state', state, '--capture', 'host', '--pcap', 'live.pcapng']);
    assert.equal(again.status, 2, 'an existing capture is never replaced');
    assert.match(again.stderr, /exists/);
    assert.equal(job.result.verified, true);
    const { readPcapng } = await import('../../src/runtime/pcapng.js');
    const { decodeExpEtherFrame } = await import('../../src/expether/pdu-codec.js');
    const ng = readPcapng(new Uint8Array(readFileSync(pcap)));
    assert.deepEqual(ng.interfaces, ['host', 'box0.slot2'], 'one interface per cable, named after it');
    const recs = ng.packets;
    assert.ok(ng.interfaces.every((_, i) => recs.some((r) => r.iface === i)), 'frames on each cable');
    assert.equal(recs.length, job.result.captured.frames);
    const frames = recs.map((r) => decodeExpEtherFrame(r.frame));
    // The data of a direct move is on the DC buffer's cable (MWr of 1 KiB payloads), not on the host's.
    const dcbufMac = 0x0060_b900_0102;
    const bigWritesToBuffer = frames.filter((f) => f.dst === dcbufMac && f.payload.tlp?.kind === 'MWr' && (f.payload.tlp.data?.length ?? 0) >= 1024).length;
    assert.ok(bigWritesToBuffer >= 1024 * 1024 / 1024 / 2, `${bigWritesToBuffer} data writes into the DC buffer captured`);
    assert.ok(new Set(frames.map((f) => f.src)).has(0x0060_b900_0001), 'and the host bridge\'s frames');
    // The capture holds the move, not the verification: reading both ranges back would put 2 MiB of read
    // completions on the host's cable; a direct move puts none there.
    const dataToHost = frames.filter((f) => f.dst === 0x0060_b900_0001 && f.payload.tlp?.kind === 'CplD' && (f.payload.tlp.data?.length ?? 0) >= 256).length;
    assert.equal(dataToHost, 0, `${dataToHost} data completions toward the host captured: the verification's reads`);
    assert.ok(recs.every((r, i) => i === 0 || r.timeNs >= recs[i - 1].timeNs - 1e3), 'merged in time order');
    const refused = dconnect(['copy', 'sda', 'sdb', '--length', '1MiB', '--live', '--state', state, '--capture', 'nowhere', '--pcap', 'no.pcap']);
    assert.equal(refused.status, 2);
    assert.match(refused.stderr, /no such link/);
  });

  it('bad requests get clear errors, exit non-zero, and write nothing', () => {
    const beforeB = sha(fileRange(sdbFile, 0, 32 * MiB));
    const unknown = dconnect(['copy', 'sda', 'sdz', '--length', '1MiB', '--live', '--state', state]);
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /UNKNOWN_DEVICE.*sdz/);
    const beyond = dconnect(['copy', 'sda', 'sdb:255MiB', '--length', '2MiB', '--live', '--state', state]);
    assert.equal(beyond.status, 2);
    assert.match(beyond.stderr, /OUT_OF_RANGE/);
    const unaligned = dconnect(['copy', 'sda:100', 'sdb', '--length', '1MiB', '--live', '--state', state]);
    assert.equal(unaligned.status, 2);
    assert.match(unaligned.stderr, /UNALIGNED/);
    assert.equal(sha(fileRange(sdbFile, 0, 32 * MiB)), beforeB);
    const noJob = dconnect(['copy', '--resume', 'j999', '--live', '--state', state]);
    assert.equal(noJob.status, 2);
    assert.match(noJob.stderr, /NO_SUCH_JOB/);
  });

  it('a box killed mid-copy fails the job naming the range done; up restarts it on the same files; resume finishes it, verified, nothing else written', async () => {
    const length = 48 * MiB;
    const data = randomBytes(length);
    writeRange(sdaFile, 128 * MiB, data);
    const srcBefore = sha(fileRange(sdaFile, 128 * MiB, length));
    const outsideBefore = [sha(fileRange(sdbFile, 96 * MiB, 32 * MiB)), sha(fileRange(sdbFile, 176 * MiB, 32 * MiB))];
    const box = JSON.parse(readFileSync(join(state, 'nodes', 'box0.json'), 'utf8')) as { pid: number };
    // The copy runs in the background; the box dies once some of it is done.
    const child = spawn(process.execPath, [CLI, 'copy', 'sda:128MiB', 'sdb:128MiB', '--length', '48MiB', '--chunk', '1MiB', '--live', '--state', state, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (b) => (out += b));
    child.stderr.on('data', (b) => (err += b));
    const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
    try {
      const deadline = Date.now() + COMMAND_MS;
      for (;;) {
        assert.ok(Date.now() < deadline, 'the copy never got going');
        // The control API directly, not a `status` process per poll: on a loaded machine a process
        // takes longer to start than the whole copy takes, and the kill point would be missed.
        // Killed once the job's durable marker has moved (a segment is flushed), not at a byte count:
        // segment k flushes while k+1 moves, so a fast copy can be well past 8 MiB with the marker at 0.
        const jobs = await controlRequest<{ state: string; doneBytes: number }[]>({ socketPath: join(state, 'host.sock') }, 'GET', '/jobs').catch(() => []);
        const job = jobs.find((j) => j.state === 'running');
        if (job && job.doneBytes > 0) break;
        await new Promise((r) => setTimeout(r, 5));
      }
      process.kill(box.pid, 'SIGKILL');
      const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), COMMAND_MS))]);
      assert.notEqual(code, 'timeout', 'the host noticed the box was gone');
      assert.notEqual(code, 0);
    } finally {
      child.kill('SIGKILL');
    }
    const failed = JSON.parse(out);
    assert.equal(failed.state, 'failed');
    assert.equal(failed.error.code, 'BOX_LOST');
    assert.match(failed.error.message, /box0.*bytes \[0, \d+\) of the range are copied and flushed/);
    assert.match(err, /--resume/);
    assert.ok(failed.doneBytes > 0 && failed.doneBytes < length, `marker ${failed.doneBytes}`);
    ok(['up', '--state', state]);
    const resumed = JSON.parse(ok(['copy', '--resume', failed.id, '--live', '--state', state, '--json']));
    assert.equal(resumed.state, 'done');
    assert.equal(resumed.resumes, 1);
    assert.equal(resumed.result.movedBytes, length - failed.doneBytes, 'the resumed run moved only the rest');
    assert.equal(resumed.result.verified, true);
    assert.equal(sha(fileRange(sdbFile, 128 * MiB, length)), sha(data), 'the destination holds the source');
    assert.equal(sha(fileRange(sdaFile, 128 * MiB, length)), srcBefore, 'the source is untouched');
    assert.deepEqual([sha(fileRange(sdbFile, 96 * MiB, 32 * MiB)), sha(fileRange(sdbFile, 176 * MiB, 32 * MiB))], outsideBefore, 'nothing outside the destination range changed');
  });

  it('down stops every node and removes their records; the drives stay', () => {
    const pids = JSON.parse(ok(['status', '--state', state, '--json'])).nodes.map((n: { pid: number }) => n.pid);
    ok(['down', '--state', state]);
    for (const pid of pids) assert.ok(!pidAlive(pid), `pid ${pid} stopped`);
    const s = JSON.parse(ok(['status', '--state', state, '--json']));
    assert.ok(s.nodes.every((n: { running: boolean }) => !n.running));
    assert.ok(existsSync(sdaFile));
  });
});

describe('live fabric (pace model): time-dilated, lag measured', { timeout: 120_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'dconnect-paced-'));
  const state = join(dir, 's');
  after(() => {
    dconnect(['down', '--state', state]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('a paced direct copy on paper-2012 reports the bandwidth in simulated time and the lag', () => {
    ok(['up', '--state', state, '--set', 'ssd.capacityBytes=64MiB', '--pace', 'model', '--time-dilation', '100']);
    const job = JSON.parse(ok(['copy', 'sda', 'sdb', '--length', '2MiB', '--live', '--state', state, '--json']));
    assert.equal(job.state, 'done');
    assert.equal(job.result.verified, true);
    // The drive writes at 250 MB/s in the model; a paced run keeps close to that in simulated time
    // (a loaded machine delays the datagrams, which the model then sees as a slower network).
    assert.ok(job.result.mbPerSecSimulated > 120 && job.result.mbPerSecSimulated <= 255, `${job.result.mbPerSecSimulated} MB/s simulated`);
    assert.ok(job.result.wallSeconds > (job.result.simulatedSeconds * 100) / 2, 'wall time follows simulated time times the dilation');
    const s = JSON.parse(ok(['status', '--state', state, '--json']));
    assert.equal(s.dilation, 100);
    assert.ok(s.session.lag && s.session.lag.events > 0 && s.session.lag.maxMs >= s.session.lag.p99Ms);
  });
});

describe('live fabric liveness: keepalives, not data progress', { timeout: 180_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'dconnect-alive-'));
  const state = join(dir, 's');
  after(() => {
    const box = existsSync(join(state, 'nodes', 'box0.json')) ? (JSON.parse(readFileSync(join(state, 'nodes', 'box0.json'), 'utf8')) as { pid: number }).pid : 0;
    if (box && pidAlive(box)) process.kill(box, 'SIGCONT'); // a stopped box must run to hear down's SIGTERM
    dconnect(['down', '--state', state]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('a copy paced so slowly that nothing completes for many peer timeouts finishes; a box that really stops (SIGSTOP) is caught as BOX_LOST', async () => {
    // Dilation 1000: the 1 MiB command takes seconds of wall time, with nothing crossing the host link
    // in between, while --peer-timeout is 400 ms. Only the box's keepalives say it is alive.
    ok(['up', '--state', state, '--set', 'ssd.capacityBytes=16MiB', '--pace', 'model', '--time-dilation', '1000', '--peer-timeout', '400']);
    const job = JSON.parse(ok(['copy', 'sda', 'sdb', '--length', '1MiB', '--chunk', '1MiB', '--live', '--state', state, '--json']));
    assert.equal(job.state, 'done', JSON.stringify(job.error));
    assert.equal(job.result.verified, true);
    assert.ok(job.result.wallSeconds > 4 * 0.4, `the copy outlasted several peer timeouts (${job.result.wallSeconds} s)`);
    assert.equal(job.result.dilation, 1000);
    assert.ok(job.result.lag && job.result.lag.maxMs >= 0, 'a paced result says its lag');
    const box = JSON.parse(readFileSync(join(state, 'nodes', 'box0.json'), 'utf8')) as { pid: number };
    const child = spawn(process.execPath, [CLI, 'copy', 'sda', 'sdb', '--length', '4MiB', '--chunk', '1MiB', '--live', '--state', state, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b) => (out += b));
    const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
    try {
      await new Promise((r) => setTimeout(r, 1000)); // under way
      process.kill(box.pid, 'SIGSTOP');
      const code = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), COMMAND_MS))]);
      assert.notEqual(code, 'timeout', 'the host noticed the box stopped');
    } finally {
      process.kill(box.pid, 'SIGCONT');
      child.kill('SIGKILL');
    }
    const failed = JSON.parse(out);
    assert.equal(failed.state, 'failed');
    assert.equal(failed.error.code, 'BOX_LOST');
    assert.match(failed.error.message, /box0.*stopped answering/);
  });
});

describe('live fabric with two boxes: three processes, the shared switch in the host node', { timeout: 120_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'dconnect-boxes-'));
  const state = join(dir, 's');
  const topo = join(dir, 'two-boxes.yaml');
  after(() => {
    dconnect(['down', '--state', state]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('each box runs in its own process; a move inside box1 and one between the boxes both verify', () => {
    writeFileSync(
      topo,
      ['extends: paper-2012-live', 'name: two-boxes', 'ssd:', '  capacityBytes: 64MiB', 'boxes:', ...['box0', 'box1'].flatMap((b, i) => [`  - name: ${b}`, '    slots:', `      - { kind: ssd, serial: S${i}A }`, `      - { kind: ssd, serial: S${i}B }`, '      - { kind: dc-buffer }'])].join('\n') + '\n',
    );
    ok(['up', '--state', state, '--topology', topo, '--pace', 'none']);
    const s = JSON.parse(ok(['status', '--state', state, '--json']));
    assert.deepEqual(
      s.nodes.map((n: { name: string; running: boolean }) => [n.name, n.running]),
      [
        ['host', true],
        ['box0', true],
        ['box1', true],
      ],
    );
    const data = randomBytes(6 * MiB);
    writeRange(join(state, 'drives', 'box1.slot0.img'), 0, data);
    writeRange(join(state, 'drives', 'box0.slot0.img'), 0, data);
    const within = JSON.parse(ok(['copy', 'sdc', 'sdd', '--length', '6MiB', '--live', '--state', state, '--json']));
    assert.equal(within.result.relay, 'dcbuf1', "box1's own buffer");
    assert.equal(within.result.verified, true);
    assert.equal(sha(fileRange(join(state, 'drives', 'box1.slot1.img'), 0, 6 * MiB)), sha(data));
    const across = JSON.parse(ok(['copy', 'sda', 'sdc:16MiB', '--length', '6MiB', '--live', '--state', state, '--json']));
    assert.equal(across.result.verified, true);
    assert.equal(sha(fileRange(join(state, 'drives', 'box1.slot0.img'), 16 * MiB, 6 * MiB)), sha(data));
  });
});

describe('live fabric under faults: frame loss on the UDP channel, a media error on a drive', { timeout: 120_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'dconnect-faults-'));
  const state = join(dir, 's');
  after(() => {
    dconnect(['down', '--state', state]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('a conventional copy over a lossy, reordering channel verifies, and the counters show the loss; a media error fails the copy naming the blocks', async () => {
    // Drawn faults on the UDP channel (the host's cable), an outage of the second drive's cable for the
    // session's first 200 ms (wall clock, unpaced: boot's frames to sdb meet it), an overflowing
    // DC-buffer port, and a bad block.
    ok(['up', '--state', state, '--topology', 'paper-2012-live', '--set', 'ssd.capacityBytes=64MiB', '--pace', 'none', '--fault', 'loss=1%,reorder=1%,dup=0.5%,corrupt=0.5%@host', '--fault', 'down=0ms+200ms@box0.slot1', '--fault', 'buffer=1600@box0.slot2', '--fault', 'media-error=sda:20480']);
    // A buffer smaller than a burst: the fabric runs per TLP (bursts assume a buffer holds one).
    assert.match(ok(['status', '--state', state]), /pace none, per TLP/);
    const data = randomBytes(2 * MiB);
    writeRange(join(state, 'drives', 'box0.slot0.img'), 0, data);
    const job = JSON.parse(ok(['copy', 'sda', 'sdb', '--length', '2MiB', '--via', 'host', '--chunk', '256KiB', '--live', '--state', state, '--json']));
    assert.equal(job.result.verified, true);
    assert.equal(sha(fileRange(join(state, 'drives', 'box0.slot1.img'), 0, 2 * MiB)), sha(data));
    const c = await controlRequest<{ trace: Record<string, Record<string, number>>; transport: Record<string, number> }>({ socketPath: join(state, 'host.sock') }, 'GET', '/counters');
    assert.ok(c.transport.lost > 0 && c.transport.reordered > 0 && c.transport.duplicated > 0 && c.transport.corrupted > 0, JSON.stringify(c.transport));
    assert.ok(c.trace['bridge.host'].retransmittedFrames > 0, 'the bridge retransmitted what was lost');
    const direct = JSON.parse(ok(['copy', 'sda:16MiB', 'sdb:16MiB', '--length', '16MiB', '--chunk', '1MiB', '--depth', '8', '--live', '--state', state, '--json']));
    assert.equal(direct.result.verified, true);
    // The box reports its own cables' faults in its node record, every second.
    let report: { faults: Record<string, number> } | null = null;
    for (let i = 0; i < 40 && !(report && report.faults.down > 0 && report.faults.overflowDrops > 0); i++) {
      await new Promise((r) => setTimeout(r, 100));
      report = JSON.parse(ok(['status', '--state', state, '--json'])).nodes[1].report;
    }
    assert.ok(report && report.faults.down > 0 && report.faults.overflowDrops > 0, JSON.stringify(report));
    // Block 20480 of 512 B is byte 10 MiB of sda.
    const bad = dconnect(['copy', 'sda:8MiB', 'sdb:8MiB', '--length', '4MiB', '--live', '--state', state]);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /DEVICE_ERROR.*read of sda blocks .*UNRECOVERED_READ_ERROR|DEVICE_ERROR.*sda.*blocks/);
    assert.match(bad.stderr, /copied and flushed/);
  });
});

describe('live fabric with failing drive files: a store error fails that request, and the fabric goes on', { timeout: 120_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'dconnect-store-'));
  const state = join(dir, 's');
  after(() => {
    dconnect(['down', '--state', state]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('disk-full on sdb fails a copy into it with Capacity Exceeded (ENOSPC over NBD); EIO on a block of sda fails its read; the box keeps serving', async () => {
    // Block 4096 of 512 B is byte 2 MiB of sda.
    ok(['up', '--state', state, '--topology', 'paper-2012-live', '--set', 'ssd.capacityBytes=64MiB', '--fault', 'disk-full=sdb', '--fault', 'store-error=sda:4096']);
    const boxPid = JSON.parse(ok(['status', '--state', state, '--json'])).nodes.find((n: { name: string }) => n.name === 'box0').pid;
    const full = dconnect(['copy', 'sda:8MiB', 'sdb:8MiB', '--length', '4MiB', '--live', '--state', state]);
    assert.equal(full.status, 1, full.stderr);
    assert.match(full.stderr, /DEVICE_ERROR.*write of sdb.*CAPACITY_EXCEEDED/);
    const eio = dconnect(['copy', 'sda:0', 'sdc:0', '--length', '4MiB', '--live', '--state', state]);
    assert.equal(eio.status, 2, 'an unknown device is still refused up front');
    const bad = dconnect(['copy', 'sda:0', 'sda:32MiB', '--length', '4MiB', '--live', '--state', state]);
    assert.equal(bad.status, 1, bad.stderr);
    assert.match(bad.stderr, /DEVICE_ERROR.*read of sda.*UNRECOVERED_READ_ERROR/);
    assert.ok(pidAlive(boxPid), 'the box is still running');
    // The rest of the drives still work: a copy that neither reads block 4096 of sda nor writes sdb.
    const good = JSON.parse(ok(['copy', 'sdb:0', 'sda:16MiB', '--length', '4MiB', '--live', '--state', state, '--json']));
    assert.equal(good.result.verified, true);
    const { have, runTool, TOOL_ENV } = await import('../helpers/nbd-tools.js');
    if (!have('qemu-io', ['--version'])) return;
    const sock = join(state, 'nbd.sock');
    const w = await runTool('qemu-io', ['-f', 'raw', '-c', 'write -P 7 0 64k', `nbd+unix:///sdb?socket=${sock}`], 30_000, TOOL_ENV);
    assert.match(w.stdout + w.stderr, /No space left on device/, 'NBD answers ENOSPC for that one request');
    const r = await runTool('qemu-io', ['-f', 'raw', '-c', 'read 0 64k', `nbd+unix:///sda?socket=${sock}`], 30_000, TOOL_ENV);
    assert.match(r.stdout, /read 65536\/65536 bytes/, 'and goes on serving');
  });
});
