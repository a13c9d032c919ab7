import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DconnectError } from '../../src/core/errors.js';
import { parseFigures } from '../../src/cli/experiments.js';
import { resourceName, utilizations } from '../../src/experiments/bottleneck.js';
import { fig8Chart, FIG8_MAX_BYTES, fig8Jobs, fig8Topology } from '../../src/experiments/fig8.js';
import { reproduce, reproJobs, type ReproResult } from '../../src/experiments/repro.js';
import { reproMarkdown, reproTables } from '../../src/experiments/report.js';
import { jobsOf, reproParameters } from '../../src/experiments/shard-plans.js';
import { loadTopology } from '../../src/topology/load.js';
import { applySettings, overridesOf } from '../../src/topology/params.js';

const MiB = 2 ** 20;

test('Fig. 8 runs on paper-2012-nic: the default preset is replaced (with its --sets), a topology without a NIC is an error naming the preset', () => {
  assert.equal(fig8Topology(loadTopology('paper-2012')).name, 'paper-2012-nic');
  assert.equal(fig8Topology(loadTopology('paper-2012-nic')).name, 'paper-2012-nic');
  const { topology, settings } = applySettings(loadTopology('paper-2012'), ['ssd.readMBps=400']);
  assert.equal(fig8Topology(topology, overridesOf(settings)).ssd.readMBps, 400, 'the run\'s --set applies to Fig. 8\'s topology too');
  assert.throws(
    () => fig8Topology(loadTopology('modern')),
    (e: unknown) => e instanceof DconnectError && e.code === 'BAD_TOPOLOGY' && /modern has no NIC/.test(e.message) && /--topology paper-2012-nic/.test(e.hint ?? ''),
  );
});

test('repro --only fig8: twelve full-fidelity NIC moves of at most 32 MiB; not in the default set; shards rebuild the same jobs', () => {
  const t = loadTopology('paper-2012');
  assert.deepEqual(parseFigures('fig8,fig5'), ['fig5', 'fig8']);
  assert.ok(reproJobs({ topology: t, runs: 1, sizeBytes: MiB }).every((j) => j.nic === undefined), 'the default stays the paper\'s two figures');
  const jobs = reproJobs({ topology: t, runs: 1, sizeBytes: 2 ** 30, only: ['fig8'] });
  assert.equal(jobs.length, 12);
  assert.ok(jobs.every((j) => j.sizeBytes === FIG8_MAX_BYTES && j.fidelity === 'full' && j.topology.name === 'paper-2012-nic'));
  assert.deepEqual(
    jobs.slice(0, 6).map((j) => `${j.nic!.src}>${j.nic!.dst} ${j.via} x${j.topology.host.link.lanes}`),
    ['sda>net:client0 dc-buffer x8', 'sda>net:client0 host x8', 'net:client0>sdb dc-buffer x8', 'net:client0>sdb host x8', 'net:client0>net:client1 dc-buffer x8', 'net:client0>net:client1 host x8'],
  );
  assert.deepEqual([...new Set(jobs.map((j) => j.topology.host.link.lanes))], [8, 1]);
  assert.equal(fig8Jobs({ topology: t, sizeBytes: 2 * MiB })[0].sizeBytes, 2 * MiB, 'a smaller --size is used as it is');
  assert.throws(() => fig8Jobs({ topology: t, sizeBytes: 1000 }), (e: unknown) => e instanceof DconnectError && e.code === 'UNALIGNED');
  const plan = { topology: t, runs: 1, sizeBytes: MiB, only: ['fig8' as const] };
  assert.deepEqual(jobsOf('repro', JSON.parse(JSON.stringify(reproParameters(plan)))), reproJobs(plan));
});

let run: ReproResult | undefined;
/** Fig. 8 at 1 MiB per bar, once for the tests below. */
async function fig8Run(threads: number): Promise<ReproResult> {
  return reproduce({ topology: loadTopology('paper-2012'), runs: 1, sizeBytes: MiB, only: ['fig8'], threads });
}

test('every bar verified; direct carries a small fraction of conventional\'s payload on the host link; x1 slows conventional; a limit for each bar', async () => {
  run = await fig8Run(2);
  const f = run.fig8!;
  assert.equal(run.fig5, undefined);
  assert.equal(f.preset, 'paper-2012-nic');
  assert.equal(f.sizeBytes, MiB);
  assert.equal(f.bars.length, 12);
  assert.equal(f.fidelity.mode, 'full');
  const bar = (move: string, mode: string, lanes: number) => f.bars.find((b) => b.move === move && b.mode === mode && b.hostLanes === lanes)!;
  for (const b of f.bars) {
    assert.ok(b.verified, `${b.move} ${b.mode} x${b.hostLanes} verified`);
    assert.ok(b.mbPerSec > 50, `${b.move} ${b.mode} x${b.hostLanes}: ${b.mbPerSec} MB/s`);
    assert.ok(b.limit.name && b.limit.name.length > 0 && b.limit.explanation.length > 0, `${b.move} ${b.mode} x${b.hostLanes} has a limit`);
    assert.doesNotMatch(b.limit.explanation, /\( on average\)/, 'no empty list of drives');
  }
  for (const move of ['serve', 'ingest', 'pipeline']) {
    for (const lanes of [8, 1]) {
      const d = bar(move, 'direct', lanes);
      const c = bar(move, 'conventional', lanes);
      assert.ok(c.hostLinkBytesPerByte > 2, `${move} x${lanes}: conventional crosses the host link both ways (${c.hostLinkBytesPerByte})`);
      assert.ok(d.hostLinkBytesPerByte < 0.1 * c.hostLinkBytesPerByte, `${move} x${lanes}: direct ${d.hostLinkBytesPerByte} B/B, conventional ${c.hostLinkBytesPerByte}`);
    }
    assert.ok(bar(move, 'conventional', 1).mbPerSec < 0.8 * bar(move, 'conventional', 8).mbPerSec, `${move}: conventional x1 slower than x8`);
    assert.ok(bar(move, 'direct', 1).mbPerSec > 1.5 * bar(move, 'conventional', 1).mbPerSec, `${move}: direct beats conventional at x1`);
  }
  // Limits named from the NIC moves' own resources and windows.
  // At 1 MiB the drive is still filling at the start (93% busy here); at Fig. 8's 32 MiB it saturates.
  assert.match(bar('ingest', 'direct', 8).limit.name!, /sdb flash write/);
  assert.match(bar('pipeline', 'direct', 8).limit.name!, /nic0/);
  assert.match(bar('serve', 'conventional', 8).limit.explanation, /the host bridge held nic0's read completions/);
});

test('the tables, the report and the chart show Fig. 8', async () => {
  const r = run ?? (await fig8Run(2));
  const text = reproTables(r);
  assert.match(text, /Fig\. 8 \(beyond the paper\): moves through a NIC on paper-2012-nic, 1 MiB per bar/);
  assert.match(text, /x1 {9}pipeline  client0 → client1  conventional/);
  const md = reproMarkdown(r, { wallSeconds: 1 });
  assert.match(md, /^Preset `paper-2012-nic`, 1 MiB per move/m);
  assert.match(md, /!\[Fig\. 8\]\(fig8\.png\)/);
  assert.match(md, /the run's topology, `paper-2012`, has no NIC/);
  assert.match(md, /\| serve \| sda → client0 \| direct \| x8 \| \d+\.\d \| 0\.0\d\d \| yes \| .+ \|/);
  const spec = fig8Chart(r.fig8!, '1 MiB') as { data: { values: { limit: string }[] } };
  assert.equal(spec.data.values.length, 12);
  assert.ok(spec.data.values.every((v) => v.limit.startsWith('limit: ') && v.limit.length > 'limit: '.length));
});

test('Fig. 8 is deterministic: the same seed gives the same JSON, on one thread or two', async () => {
  const a = run ?? (await fig8Run(2));
  const b = await fig8Run(1);
  assert.equal(JSON.stringify(b.fig8), JSON.stringify(a.fig8));
});

test("a NIC's network is named for people: its port, its switch's ports, its clients' ports and CPUs", () => {
  const devices = { 'box0.slot3': 'nic0', 'box0.slot2': 'dcbuf0' };
  const trace = { 'client.client0': { cpuBusyPs: 4e8 }, 'eth.client0': { busyPs: 1e8 }, 'eth.box0.slot3.mac': { busyPs: 9e8 }, 'eth.net.box0.slot3.p1': { busyPs: 9e8 }, 'eth.box0.slot3': { busyPs: 5e8 } };
  assert.equal(resourceName('eth.box0.slot3.mac', devices), "nic0's Ethernet port");
  assert.equal(resourceName('eth.net.box0.slot3.p1', devices), "nic0's network switch port p1");
  assert.equal(resourceName('eth.client0', devices, undefined, trace), "client0's Ethernet port");
  assert.equal(resourceName('eth.client0', devices), 'Ethernet port client0', 'without the trace, a name alone is not taken for a client');
  assert.equal(resourceName('client.client0', devices), 'client0 CPU');
  const u = utilizations({ trace, devices, simulatedSeconds: 1e-3, depth: 3, hostLanes: 8 });
  // The switch port sends what the NIC's port sent it: equally busy, the NIC's port is named first.
  assert.deepEqual(
    u.map((x) => x.resource),
    ["nic0's Ethernet port", "nic0's network switch port p1", "nic0's bridge Ethernet port", 'client0 CPU', "client0's Ethernet port"],
  );
});
