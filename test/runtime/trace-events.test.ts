import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { runCopy, type CopyResult } from '../../src/runtime/copy.js';
import { cableEnds } from '../../src/runtime/capture.js';
import { faultConnect, parseFault } from '../../src/runtime/faults.js';
import { PID, traceFile, type TraceEvent, type TraceFile, type TraceRun } from '../../src/runtime/trace-events.js';
import { MAX_SAMPLES, type TraceRecording } from '../../src/runtime/trace-sampler.js';
import { linkDirections } from '../../src/runtime/trace-series.js';
import { loadTopology } from '../../src/topology/load.js';
import { timelineChart } from '../../src/experiments/timeline.js';
import { renderChart } from '../../src/experiments/charts.js';

const topology = loadTopology('paper-2012');
const LENGTH = 2 << 20;

function traced(via: 'dc-buffer' | 'host', extra: { firstWindowPs?: number; fault?: string } = {}): { r: CopyResult; run: TraceRun } {
  let rec: TraceRecording | null = null;
  const faults = extra.fault ? faultConnect(topology, [parseFault(extra.fault)], 1) : null;
  const r = runCopy({
    topology,
    src: 'sda',
    srcOffset: 0,
    dst: 'sdb',
    dstOffset: 0,
    lengthBytes: LENGTH,
    via,
    seed: 1,
    fidelity: 'full',
    ...(faults ? { connect: faults.connect } : {}),
    traceRecording: { ...(extra.firstWindowPs ? { firstWindowPs: extra.firstWindowPs } : {}), ...(faults ? { extra: { faults: () => ({ ...faults.counts }) } } : {}), done: (x) => (rec = x) },
  });
  assert.ok(rec, 'the recording was handed over');
  const t = rec as TraceRecording;
  return { r, run: { label: via === 'dc-buffer' ? 'direct' : 'conventional', samples: t.samples, commands: t.commands, droppedCommands: t.droppedCommands, cables: cableEnds(topology), devices: t.devices, clock: 'simulated' } };
}

/** A counter track's integral (value x µs until its next sample), per track name, for one process. */
function integrals(events: TraceEvent[], pid: number, arg: string): Map<string, number> {
  const byName = new Map<string, TraceEvent[]>();
  for (const e of events) if (e.ph === 'C' && e.pid === pid) byName.set(e.name, [...(byName.get(e.name) ?? []), e]);
  const out = new Map<string, number>();
  for (const [name, list] of byName) {
    let sum = 0;
    for (let i = 0; i + 1 < list.length; i++) {
      assert.ok(list[i + 1].ts! >= list[i].ts!, `${name}: samples in time order`);
      sum += (list[i].args![arg] as number) * (list[i + 1].ts! - list[i].ts!);
    }
    out.set(name, sum);
  }
  return out;
}

function checkStructure(file: TraceFile, r: CopyResult, run: TraceRun): void {
  const ev = file.traceEvents;
  // Counters: each link direction's utilisation integrates to its busy time over the move.
  const sums = integrals(ev, PID.links, 'utilisation');
  const dirs = linkDirections(run.samples[0].counters, run.cables, run.devices);
  assert.ok(dirs.length >= 10, `link directions: ${dirs.length}`);
  for (const d of dirs) {
    const busyPs = r.trace[d.source].busyPs;
    const tracedPs = (sums.get(d.label) ?? 0) * 1e6;
    assert.ok(Math.abs(tracedPs - busyPs) <= 1e-6 * busyPs + 1, `${d.label}: trace ${tracedPs} ps busy, counters ${busyPs} ps`);
  }
  // Slices: every b has one e with the same id, later, on the same drive and queue; no id twice.
  const open = new Map<string, TraceEvent>();
  let slices = 0;
  const slice = new Map<string, { b: TraceEvent; e: TraceEvent }>();
  for (const e of ev.filter((x) => x.cat === 'nvme')) {
    if (e.ph === 'b') {
      assert.ok(!open.has(e.id!) && !slice.has(e.id!), `id ${e.id} used once`);
      open.set(e.id!, e);
    } else {
      assert.equal(e.ph, 'e');
      const b = open.get(e.id!);
      assert.ok(b, `end of ${e.id} after its begin`);
      assert.equal(b.pid, e.pid);
      assert.equal(b.tid, e.tid);
      assert.equal(b.name, e.name);
      assert.ok(e.ts! >= b.ts!);
      open.delete(e.id!);
      slice.set(e.id!, { b, e });
      slices++;
    }
  }
  assert.equal(open.size, 0, 'every slice ended');
  assert.equal(slices, r.commands.read + r.commands.write);
  // Flows: each chunk's read slice starts a flow (flow_out) that its write slice ends (flow_in), later, on the destination.
  const chunks = LENGTH / r.chunkBytes;
  const flows = new Map<string, TraceEvent[]>();
  for (const e of ev.filter((x) => x.bind_id !== undefined)) flows.set(e.bind_id!, [...(flows.get(e.bind_id!) ?? []), e]);
  assert.equal(flows.size, chunks);
  const drivePid = (name: string) => ev.find((e) => e.ph === 'M' && e.name === 'process_name' && (e.args!.name as string).endsWith(`drive ${name}`))!.pid;
  for (const [id, pair] of flows) {
    assert.equal(pair.length, 2, `flow ${id}: one start, one end`);
    const [out, into] = pair;
    assert.ok(out.ph === 'b' && out.flow_out && !out.flow_in && out.name.startsWith('read') && out.pid === drivePid('sda'), `flow ${id} starts on a read of sda`);
    assert.ok(into.ph === 'b' && into.flow_in && !into.flow_out && into.name.startsWith('write') && into.pid === drivePid('sdb'), `flow ${id} ends on a write of sdb`);
    assert.equal(out.args!.chunk, into.args!.chunk, `flow ${id} joins one chunk`);
    const readEnd = slice.get(out.id!)!.e.ts!;
    assert.ok(readEnd <= into.ts!, `flow ${id}: the write starts after its read ended`);
  }
}

describe('trace events (issue "See a move happen")', () => {
  const direct = traced('dc-buffer');
  const conventional = traced('host');
  const file = traceFile([direct.run, conventional.run], { seed: 1 });

  it('is valid Chrome trace JSON with named processes', () => {
    const parsed = JSON.parse(JSON.stringify(file)) as TraceFile;
    assert.ok(parsed.traceEvents.length > 1000);
    for (const e of parsed.traceEvents) {
      assert.equal(typeof e.name, 'string');
      assert.ok(['M', 'C', 'b', 'e', 's', 'f', 'i'].includes(e.ph), e.ph);
      if (e.ph !== 'M') assert.equal(typeof e.ts, 'number');
    }
    const names = parsed.traceEvents.filter((e) => e.name === 'process_name').map((e) => e.args!.name);
    assert.ok(names.includes('direct: drive sda') && names.includes('conventional: drive sdb'), String(names));
  });

  it('a direct move: counters sum to busy time, slices nest, flows connect', () => {
    checkStructure({ ...file, traceEvents: runEventsOf(file, 0) }, direct.r, direct.run);
  });

  it('a conventional move: the same', () => {
    checkStructure({ ...file, traceEvents: runEventsOf(file, 1000) }, conventional.r, conventional.run);
  });

  it('shows the paper\'s point: the host link idles in the direct move and carries the data in the conventional one', () => {
    const busy = (run: number) => integrals(runEventsOf(file, run), PID.links, 'utilisation').get('PCIe hostLink upstream')!;
    assert.ok(busy(1000) > 50 * busy(0), `host link upstream busy: direct ${busy(0)} us, conventional ${busy(1000)} us`);
  });

  it('the DC buffer fills and empties: occupancy within its slots, back to 0 at the end', () => {
    const occ = file.traceEvents.filter((e) => e.ph === 'C' && e.pid === PID.dcBuffers).map((e) => e.args!.bytes as number);
    assert.ok(Math.max(...occ) > 0);
    assert.ok(Math.max(...occ) <= direct.r.depth * direct.r.chunkBytes);
    assert.equal(occ[occ.length - 1], 0);
    const windows = file.traceEvents.filter((e) => e.ph === 'C' && e.pid === PID.bridges && e.name === 'window box0.slot0').map((e) => e.args!.frames as number);
    assert.ok(Math.max(...windows) > 0, 'the source slot\'s bridge has frames in flight');
    const credits = file.traceEvents.filter((e) => e.ph === 'C' && e.pid === PID.credits && e.name === 'credits box0.slot0.link.upstream');
    assert.ok(credits.length > 2 && typeof credits[0].args!.postedDataBytes === 'number');
  });

  it('is deterministic for a seed', () => {
    const again = traceFile([traced('dc-buffer').run, traced('host').run], { seed: 1 });
    assert.equal(JSON.stringify(again), JSON.stringify(file));
  });

  it('leaves the move itself unchanged (same time, same events as without a trace)', () => {
    const plain = runCopy({ topology, src: 'sda', srcOffset: 0, dst: 'sdb', dstOffset: 0, lengthBytes: LENGTH, via: 'dc-buffer', seed: 1, fidelity: 'full' });
    assert.equal(direct.r.simulatedSeconds, plain.simulatedSeconds);
    assert.equal(direct.r.events, plain.events);
    assert.deepEqual(direct.r.trace, plain.trace);
  });

  it('stays bounded: a tiny window doubles until the run fits in MAX_SAMPLES windows', () => {
    const { run } = traced('dc-buffer', { firstWindowPs: 10_000 });
    assert.ok(run.samples.length <= MAX_SAMPLES + 1 && run.samples.length > MAX_SAMPLES / 2, `${run.samples.length} samples`);
  });

  it('marks retransmissions and injected faults as instant events', () => {
    const { r, run } = traced('dc-buffer', { fault: 'loss=0.5%' });
    assert.ok(r.verified);
    const marks = traceFile([run], {}).traceEvents.filter((e) => e.ph === 'i');
    assert.ok(marks.some((e) => e.name.startsWith('lost faults')), marks.slice(0, 5).map((e) => e.name).join(', '));
    assert.ok(marks.some((e) => /^(retransmittedFrames|timeoutResentFrames) bridge\./.test(e.name)));
  });

  it('draws a timeline of both moves side by side', async () => {
    const { svg, png } = await renderChart(timelineChart([direct.run, conventional.run], 'test'));
    assert.ok(svg.includes('host link (PCIe)') && svg.includes('direct') && svg.includes('conventional'));
    assert.ok(png.length > 10_000);
  });
});

/** One run's events (its processes are pidBase..pidBase+999). */
function runEventsOf(file: TraceFile, pidBase: number): TraceEvent[] {
  return file.traceEvents.filter((e) => e.pid >= pidBase && e.pid < pidBase + 1000).map((e) => ({ ...e, pid: e.pid - pidBase }));
}
