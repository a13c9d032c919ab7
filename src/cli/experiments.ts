import { DconnectError } from '../core/errors.js';
import { formatBytes, parseCount, parseSize } from '../core/units.js';
import type { FidelityMode } from '../runtime/copy.js';
import { fidelityLine, granularityLine } from '../experiments/fidelity.js';
import type { Granularity } from '../runtime/moves.js';
import { runJob, type Job, type JobResult } from '../experiments/jobs.js';
import type { TraceRun } from '../runtime/trace-events.js';
import { recordInto, viewOutputsOf, writeViewOutputs, type ViewOutputs } from './trace-output.js';
import type { Metric } from '../experiments/metrics.js';
import { writeArtifacts } from '../experiments/output.js';
import { runJobs } from '../experiments/pool.js';
import { reproMarkdown, reproTables } from '../experiments/report.js';
import { assembleRepro, fig5Chart, fig6Chart, FIGURES, fmtSize, hostLinkGeneration, PAPER_FIGURES, reproJobs, type Figure, type ReproPlan, type ReproResult } from '../experiments/repro.js';
import { relaysChart } from '../experiments/relays.js';
import { fig7Chart } from '../experiments/fig7.js';
import { fig8Chart } from '../experiments/fig8.js';
import { filesChart, filesSizes } from '../experiments/files.js';
import { jobsOf, reproParameters, reproPlanOf, sweepParameters, sweepPlanOf } from '../experiments/shard-plans.js';
import { inShard, mergeShards, parseShard, readShardFile, shardFile, shardFileName, shardName, type ShardCommand, type ShardSpec } from '../experiments/shard.js';
import { parseSweepParam } from '../experiments/sweep-params.js';
import { assembleSweep, sweepChart, sweepJobs, sweepTable, type SweepPlan, type SweepResult } from '../experiments/sweep.js';
import type { Override } from '../topology/params.js';
import type { Topology } from '../topology/schema.js';
import { parseMoveVia, parseSeed } from './args.js';
import type { Io } from './io.js';
import { jobProgress } from './progress.js';
import { checkOutputDir } from './output-paths.js';

/**
 * The actions of `repro`, `sweep` and `merge` (loaded on demand: the experiments pull in the chart
 * libraries, which `copy` does not need). A run either runs every job and writes the figures, or with
 * `--shard I/N` runs its share and writes a shard result file; `merge` turns a whole set of those into
 * the figures one run would have written.
 */

export interface Loaded {
  topology: Topology;
  overrides: Override[];
}

interface RunOptions {
  out: string;
  threads?: string;
  shard?: string;
  json?: boolean;
}

const secondsSince = (t: bigint) => Number(process.hrtime.bigint() - t) / 1e9;
const mbPerSec = (r: JobResult) => `${r.mbPerSec.toFixed(2)} MB/s`;

/** Runs `jobs` (all of them, or one shard's) with progress on stderr; the results and the wall time. */
async function run(io: Io, label: string, jobs: Job[], threads: string | undefined, value: (r: JobResult) => string): Promise<{ results: JobResult[]; wallSeconds: number }> {
  const started = process.hrtime.bigint();
  const progress = jobProgress(label, jobs.length, label.startsWith('repro') ? 'moves' : 'points', (d) => value(d.result), io.err);
  const results = await runJobs(jobs, { threads: threads === undefined ? undefined : parseCount(threads, '--threads', 1, 64), onStart: progress.onStart, onDone: progress.onDone });
  progress.stop();
  return { results, wallSeconds: secondsSince(started) };
}

/** `--shard I/N`: run the shard's jobs and write `<command>.shard-I-of-N.json` into --out. */
async function runShard(io: Io, command: ShardCommand, parameters: Record<string, unknown>, jobs: Job[], spec: ShardSpec, o: RunOptions, value: (r: JobResult) => string): Promise<void> {
  const mine = jobs.filter((_, k) => inShard(k, spec));
  const { results, wallSeconds } = await run(io, `${command} ${shardName(spec)}`, mine, o.threads, value);
  const file = shardFile(command, parameters, spec, jobs, results, wallSeconds);
  const [written] = await writeArtifacts(o.out, [{ name: shardFileName(command, spec).replace(/\.json$/, ''), json: file }]);
  if (o.json) io.out.write(JSON.stringify(file) + '\n');
  else io.out.write(`shard ${shardName(spec)} of ${command}: ${mine.length} of ${jobs.length} jobs; wrote ${written}\nonce every shard is done: dconnect merge ${o.out}/${command}.shard-*-of-${spec.count}.json --out ${o.out}\n`);
}

/**
 * `repro --trace-events FILE`: the first job of each figure and mode (Fig. 5's first direct and first
 * conventional move, Fig. 6's first, ...), run again here at the full fidelity with a recording (the
 * same seed, so the same move), one labelled run each in one file. Moves through a NIC (Fig. 8) are
 * not traced: their harness has no recording yet.
 */
/** The jobs `repro --trace-events` traces; refused before any work when there are none. */
function tracedJobs(jobs: Job[]): Job[] {
  const firsts = new Map<string, Job>();
  for (const j of jobs) {
    const key = `${(j.label ?? '').split(' ')[0]} ${j.via}`;
    if (j.nic === undefined && j.files === undefined && !firsts.has(key)) firsts.set(key, j);
  }
  if (firsts.size === 0) throw new DconnectError('BAD_OPTION', '--trace-events: the figures asked for have no drive-to-drive move to trace (Fig. 8 moves through a NIC; file copies are not traced)', 'add a figure with drive moves, e.g. --only fig5,fig8');
  return [...firsts.values()];
}

async function traceRepro(io: Io, traced: Job[], plan: ReproPlan, views: ViewOutputs): Promise<void> {
  const runs: TraceRun[] = [];
  for (const j of traced) {
    io.err.write(`repro: tracing ${j.label ?? 'a move'} at the full fidelity\n`);
    runJob({ ...j, fidelity: 'full' }, recordInto(runs, j.label ?? '', j.topology, views));
  }
  for (const line of await writeViewOutputs(views, runs, { command: 'repro', topology: plan.topology.name, only: plan.only ?? PAPER_FIGURES }, '')) io.err.write(line + '\n');
}

export async function reproAction(io: Io, o: RunOptions & { runs: string; size: string; only?: string; maxFileSize?: string; fidelity: FidelityMode; granularity: Granularity; traceEvents?: string; traceWindow?: string }, t: Loaded): Promise<void> {
  const only = o.only === undefined ? undefined : parseFigures(o.only);
  if (o.maxFileSize !== undefined && !only?.includes('files')) throw new DconnectError('BAD_OPTION', '--max-file-size sizes the files figure, which this run does not include', 'add it: --only files --max-file-size 1GiB');
  const maxFileBytes = o.maxFileSize === undefined ? undefined : parseSize(o.maxFileSize, '--max-file-size');
  if (maxFileBytes !== undefined) filesSizes(maxFileBytes);
  const plan: ReproPlan = { topology: t.topology, overrides: t.overrides, runs: parseCount(o.runs, '--runs', 1, 100), sizeBytes: parseSize(o.size, '--size'), only, fidelity: o.fidelity, granularity: o.granularity, ...(maxFileBytes !== undefined ? { maxFileBytes } : {}) };
  const spec = o.shard === undefined ? undefined : parseShard(o.shard);
  checkOutputDir(o.out);
  const views = viewOutputsOf(o); // with --shard refused by the command: a trace covers a whole run
  const jobs = reproJobs(plan);
  const traced = views ? tracedJobs(jobs) : [];
  const fig8 = jobs.find((j) => j.nic !== undefined);
  if (fig8 && fig8.topology.name !== plan.topology.name) io.err.write(`repro: fig8 runs on ${fig8.topology.name}: ${plan.topology.name} has no NIC\n`);
  if (spec) return runShard(io, 'repro', reproParameters(plan), jobs, spec, o, mbPerSec);
  const started = process.hrtime.bigint();
  const { results, wallSeconds } = await run(io, 'repro', jobs, o.threads, mbPerSec);
  const r = assembleRepro(plan, results);
  await writeRepro(io, r, o, { wallSeconds });
  if (views) await traceRepro(io, traced, plan, views);
  const sizes = [...new Set(jobs.map((j) => j.sizeBytes))].map((n) => formatBytes(n)).join(' and ');
  io.err.write(`repro: ${jobs.length} moves of ${sizes} in ${secondsSince(started).toFixed(1)} s wall; ${fidelityLine(r.fidelity)}${r.granularity.mode === 'burst' ? `; ${granularityLine(r.granularity)}` : ''}\n`);
}

/** Below this move size a failed bound is likely the move's start, not the model (the tests judge the bounds from 4 MiB). */
const SMALLEST_JUDGED_BYTES = 16 << 20;

/** `--only fig7` or `--only fig5,fig6,fig7,fig8`: known figures, each once, in the canonical order. */
export function parseFigures(text: string): Figure[] {
  const asked = text.split(',').map((f) => f.trim());
  for (const f of asked) if (!(FIGURES as readonly string[]).includes(f)) throw new DconnectError('BAD_OPTION', `--only '${f}' is not a figure`, `use one or more of ${FIGURES.join(', ')}, comma-separated (default: ${PAPER_FIGURES.join(',')})`);
  return FIGURES.filter((f) => asked.includes(f));
}

/** Fig. 5 to Fig. 8 (JSON, SVG, PNG) and report.md into --out; the tables (or the JSON) on stdout. A failed bound or a Fig. 8 move that did not verify exits 1. */
async function writeRepro(io: Io, r: ReproResult, o: { out: string; json?: boolean }, wall: { wallSeconds: number; shards?: number }): Promise<void> {
  const files = [];
  if (r.fig5) files.push({ name: 'fig5', json: { preset: r.preset, sizeBytes: r.sizeBytes, overrides: r.overrides, fig5: r.fig5 }, chart: fig5Chart(r) });
  if (r.fig6) files.push({ name: 'fig6', json: { preset: r.preset, sizeBytes: r.sizeBytes, overrides: r.overrides, fig6: r.fig6 }, chart: fig6Chart(r) });
  if (r.fig7) files.push({ name: 'fig7', json: { preset: r.preset, sizeBytes: r.sizeBytes, overrides: r.overrides, fig7: r.fig7 }, chart: fig7Chart(r, fmtSize(r.sizeBytes)) });
  if (r.fig8) files.push({ name: 'fig8', json: { preset: r.fig8.preset, sizeBytes: r.fig8.sizeBytes, overrides: r.overrides, fig8: r.fig8 }, chart: fig8Chart(r.fig8, fmtSize(r.fig8.sizeBytes)) });
  if (r.relays) files.push({ name: 'relays', json: { preset: r.preset, sizeBytes: r.sizeBytes, overrides: r.overrides, relays: r.relays }, chart: relaysChart(r.relays, { sizeBytes: r.sizeBytes, runs: r.runs, preset: r.preset, generation: hostLinkGeneration(r) }) });
  if (r.files) files.push({ name: 'files', json: { preset: r.files.preset, overrides: r.overrides, granularity: r.granularity, files: r.files }, chart: filesChart(r.files) });
  files.push({ name: 'report.md', text: reproMarkdown(r, wall) });
  const written = await writeArtifacts(o.out, files);
  if (o.json) io.out.write(JSON.stringify(r) + '\n');
  else io.out.write(`${reproTables(r)}\n\nwrote ${written.join(', ')}\n`);
  if (r.bounds.some((b) => !b.ok)) {
    process.exitCode = 1;
    // The paper moved 1 GB; in a move of a few MiB the start (the first chunk is read before anything
    // is written) is a large share of the time, and the bandwidth falls below the bounds.
    if (r.sizeBytes < SMALLEST_JUDGED_BYTES) io.err.write(`repro: the paper's bounds describe its 1 GB moves; in moves of ${fmtSize(r.sizeBytes)} each move's start weighs more. Try --size 16MiB or more (the default is 1GiB)\n`);
  }
  if (r.fig8?.bars.some((b) => !b.verified)) {
    io.err.write(`repro: Fig. 8 moves that did not verify at the far end: ${r.fig8.bars.filter((b) => !b.verified).map((b) => `${b.move} ${b.mode} x${b.hostLanes}`).join(', ')}\n`);
    process.exitCode = 1;
  }
}

export async function sweepAction(io: Io, o: RunOptions & { param: string[]; metric: Metric; via: string; size: string; seed: string; fidelity: FidelityMode; granularity: Granularity }, t: Loaded): Promise<void> {
  if (o.param.length === 0) throw new DconnectError('BAD_PARAM', 'sweep needs at least one --param', 'e.g. dconnect sweep --param host.lanes=1,2,4,8 (a wrong path lists the valid ones)');
  const params = o.param.map((p) => parseSweepParam(t.topology, p));
  if (params.length > 3) throw new DconnectError('BAD_PARAM', `${params.length} parameters given; a sweep takes at most 3`);
  const points = params.reduce((n, p) => n * p.values.length, 1);
  if (points > 1000) throw new DconnectError('BAD_PARAM', `the sweep has ${points} points; at most 1000`, 'give fewer values');
  const plan: SweepPlan = { topology: t.topology, overrides: t.overrides, params, via: parseMoveVia(o.via), sizeBytes: parseSize(o.size, '--size'), seed: parseSeed(o.seed), metric: o.metric, fidelity: o.fidelity, granularity: o.granularity };
  const spec = o.shard === undefined ? undefined : parseShard(o.shard);
  checkOutputDir(o.out);
  const jobs = sweepJobs(plan);
  const value = (r: JobResult) => metricText(o.metric, r[o.metric]);
  if (spec) return runShard(io, 'sweep', sweepParameters(plan), jobs, spec, o, value);
  const { results } = await run(io, 'sweep', jobs, o.threads, value);
  await writeSweep(io, assembleSweep(plan, results), o);
}

/** sweep.json, .svg and .png into --out; the table (or the JSON) on stdout. */
async function writeSweep(io: Io, r: SweepResult, o: { out: string; json?: boolean }): Promise<void> {
  const written = await writeArtifacts(o.out, [{ name: 'sweep', json: r, chart: sweepChart(r) }]);
  if (o.json) io.out.write(JSON.stringify(r) + '\n');
  else io.out.write(`${sweepTable(r)}\n\nwrote ${written.join(', ')}\n`);
}

/** A sweep point's metric for a progress line. */
function metricText(metric: Metric, v: number): string {
  if (metric === 'mbPerSec') return `${v.toFixed(2)} MB/s`;
  if (metric === 'simulatedSeconds') return `${v.toFixed(6)} s simulated`;
  return `${metric} ${v}`;
}

/** `dconnect merge FILES... --out DIR`: every check first, so a bad set writes nothing. */
export async function mergeAction(io: Io, paths: string[], o: { out: string; json?: boolean }): Promise<void> {
  checkOutputDir(o.out);
  const m = mergeShards(
    paths.map((path) => ({ path, file: readShardFile(path) })),
    jobsOf,
  );
  const how = `${m.count} shard${m.count === 1 ? '' : 's'} of ${m.command}, ${m.results.length} jobs`;
  if (m.command === 'repro') {
    const r = assembleRepro(reproPlanOf(m.parameters), m.results);
    await writeRepro(io, r, o, { wallSeconds: m.wallSeconds, shards: m.count });
    io.err.write(`merge: ${how} (their wall time summed: ${m.wallSeconds.toFixed(1)} s); ${fidelityLine(r.fidelity)}\n`);
  } else {
    const r = assembleSweep(sweepPlanOf(m.parameters), m.results);
    await writeSweep(io, r, o);
    io.err.write(`merge: ${how}; ${fidelityLine(r.fidelity)}\n`);
  }
}
