import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { DconnectError } from '../core/errors.js';
import type { Job, JobResult } from './jobs.js';

/**
 * Sweeps larger than one machine, with no scheduler of ours. `repro` and `sweep` with `--shard I/N`
 * run the I-th of N shares of their jobs and write a shard result file; `dconnect merge` checks that
 * a set of such files is one whole run and assembles from them the result that run would have given.
 * Each job is deterministic in its own seed, so where a job runs does not change its result.
 *
 * Shares are cut round-robin from the command's one canonical job order: job k (counting from 0) is in
 * shard (k mod N) + 1. Round-robin rather than contiguous blocks because cost grows along the list
 * (Fig. 6's deeper queues, a sweep's larger values): blocks would give the last shard the longest
 * jobs. Shards count from 1, like Slurm array indices (`--array=1-N`) and GNU parallel's `{#}`.
 */

/** Enough for any sweep (at most 1000 points) or repro (at most 436 moves) to give one job per shard. */
export const MAX_SHARDS = 1000;
export const SHARD_FORMAT = 'dconnect-shard';
export const SHARD_FORMAT_VERSION = 1;
export const SHARD_ASSIGNMENT = 'round-robin: job k (from 0) is in shard (k mod N) + 1';

export type ShardCommand = 'repro' | 'sweep';

/** `--shard I/N`: the I-th (from 1) of N shares. */
export interface ShardSpec {
  index: number;
  count: number;
}

export interface ShardFile {
  format: typeof SHARD_FORMAT;
  formatVersion: number;
  dconnectVersion: string;
  command: ShardCommand;
  /** Everything that fixes the jobs and the result, as plain data: merge rebuilds the job list from it. */
  parameters: Record<string, unknown>;
  /** sha256 of `parameters` as canonical JSON (keys sorted), so shards compare at a glance. */
  parametersSha256: string;
  shard: ShardSpec;
  assignment: string;
  totalJobs: number;
  /** Wall time of this shard's moves (the one figure that differs between runs). */
  wallSeconds: number;
  /** This shard's jobs, in canonical order: index in the whole run, id (its label), result. */
  jobs: { index: number; id: string; result: JobResult }[];
}

const SHARD_HINT = `give I/N with 1 <= I <= N <= ${MAX_SHARDS}, e.g. --shard 1/3, 2/3, 3/3 (I counts from 1: Slurm --array=1-N gives $SLURM_ARRAY_TASK_ID; GNU parallel {#}; a Kubernetes indexed Job $((JOB_COMPLETION_INDEX + 1))/N)`;

export function parseShard(text: string): ShardSpec {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  if (!m) throw new DconnectError('BAD_OPTION', `--shard '${text}' is not I/N`, SHARD_HINT);
  const [index, count] = [Number(m[1]), Number(m[2])];
  if (count < 1 || count > MAX_SHARDS) throw new DconnectError('BAD_OPTION', `--shard ${text}: N must be 1 to ${MAX_SHARDS}`, SHARD_HINT);
  if (index < 1 || index > count) throw new DconnectError('BAD_OPTION', `--shard ${text}: I must be 1 to ${count} (shards count from 1)`, SHARD_HINT);
  return { index, count };
}

export const inShard = (k: number, s: ShardSpec): boolean => k % s.count === s.index - 1;
export const shardName = (s: ShardSpec): string => `${s.index}/${s.count}`;
export const shardFileName = (command: ShardCommand, s: ShardSpec): string => `${command}.shard-${s.index}-of-${s.count}.json`;

/** JSON with object keys sorted at every depth: the same data gives the same text on any machine. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

let version: string | undefined;
/** The package's version (package.json), recorded in shard files: merge refuses to mix versions. */
export function dconnectVersion(): string {
  version ??= (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  return version;
}

/** The shard result file of `spec`: `results` are those of the jobs in the shard, in canonical order. */
export function shardFile(command: ShardCommand, parameters: Record<string, unknown>, spec: ShardSpec, jobs: readonly Job[], results: readonly JobResult[], wallSeconds: number): ShardFile {
  const mine = jobs.map((job, index) => ({ job, index })).filter(({ index }) => inShard(index, spec));
  if (mine.length !== results.length) throw new Error(`shard ${shardName(spec)}: ${results.length} results for ${mine.length} jobs`);
  return {
    format: SHARD_FORMAT,
    formatVersion: SHARD_FORMAT_VERSION,
    dconnectVersion: dconnectVersion(),
    command,
    parameters,
    parametersSha256: sha256(canonicalJson(parameters)),
    shard: spec,
    assignment: SHARD_ASSIGNMENT,
    totalJobs: jobs.length,
    wallSeconds,
    jobs: mine.map(({ job, index }, i) => ({ index, id: jobId(job, index), result: results[i] })),
  };
}

const jobId = (job: Job, index: number) => job.label ?? `job ${index}`;
const bad = (message: string, hint?: string) => new DconnectError('BAD_SHARDS', message, hint);

/** Reads a shard result file, checking it is one (format, version, shape) before anything trusts it. */
export function readShardFile(path: string): ShardFile {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw bad(`${path}: cannot read a shard result file: ${(e as Error).message.split('\n')[0]}`, 'give the files that repro or sweep --shard I/N wrote (NAME.shard-I-of-N.json)');
  }
  const f = doc as Partial<ShardFile> | null;
  if (!f || typeof f !== 'object' || f.format !== SHARD_FORMAT) throw bad(`${path} is not a dconnect shard result file`, 'give the files that repro or sweep --shard I/N wrote (NAME.shard-I-of-N.json)');
  if (f.formatVersion !== SHARD_FORMAT_VERSION) throw bad(`${path}: shard format version ${f.formatVersion}; this dconnect reads version ${SHARD_FORMAT_VERSION}`, 'run every shard and the merge with the same dconnect');
  const intIn = (v: unknown, lo: number, hi: number) => Number.isInteger(v) && (v as number) >= lo && (v as number) <= hi;
  const shapeOk =
    (f.command === 'repro' || f.command === 'sweep') &&
    typeof f.parameters === 'object' && f.parameters !== null &&
    typeof f.parametersSha256 === 'string' &&
    intIn(f.shard?.count, 1, MAX_SHARDS) && intIn(f.shard?.index, 1, f.shard!.count) &&
    Number.isInteger(f.totalJobs) && Array.isArray(f.jobs) &&
    f.jobs.every((j) => j && Number.isInteger(j.index) && typeof j.id === 'string' && j.result && typeof j.result === 'object');
  if (!shapeOk) throw bad(`${path}: a shard result file with missing or malformed fields`, 'it was edited or truncated; run that shard again');
  if (sha256(canonicalJson(f.parameters)) !== f.parametersSha256) throw bad(`${path}: its parameters do not match their sha256`, 'it was edited; run that shard again');
  return f as ShardFile;
}

/** The first place two parameter sets differ, as `path: a vs b`. */
function difference(a: unknown, b: unknown, path = ''): string | undefined {
  if (canonicalJson(a) === canonicalJson(b)) return undefined;
  if (a && b && typeof a === 'object' && typeof b === 'object' && Array.isArray(a) === Array.isArray(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    for (const k of keys) {
      const d = difference((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], path ? `${path}.${k}` : k);
      if (d) return d;
    }
  }
  const show = (v: unknown) => (v === undefined ? '(absent)' : canonicalJson(v).slice(0, 80));
  return `${path || '(all)'}: ${show(a)} vs ${show(b)}`;
}

export interface MergedShards {
  command: ShardCommand;
  parameters: Record<string, unknown>;
  count: number;
  /** Every job's result, in canonical order. */
  results: JobResult[];
  /** The shards' wall times, summed. */
  wallSeconds: number;
}

/**
 * Checks that `files` are all the shards of one run and nothing else: same command, dconnect version
 * and parameters, every shard 1..N exactly once, each holding exactly its share of the jobs `jobsOf`
 * gives for those parameters (by index and id). Returns every result in canonical order.
 */
export function mergeShards(files: readonly { path: string; file: ShardFile }[], jobsOf: (command: ShardCommand, parameters: Record<string, unknown>) => Job[]): MergedShards {
  if (files.length === 0) throw bad('no shard result files given', 'e.g. dconnect merge results/repro.shard-*-of-3.json --out results');
  const [first] = files;
  const f0 = first.file;
  for (const { path, file } of files.slice(1)) {
    const vs = `${path} and ${first.path}`;
    if (file.command !== f0.command) throw bad(`${vs} come from different commands (${file.command}, ${f0.command})`, 'merge the shards of one run at a time');
    if (file.dconnectVersion !== f0.dconnectVersion) throw bad(`${vs} come from different dconnect versions (${file.dconnectVersion}, ${f0.dconnectVersion})`, 'run every shard with the same dconnect');
    if (file.parametersSha256 !== f0.parametersSha256) throw bad(`${vs} come from runs with different parameters: ${difference(file.parameters, f0.parameters)}`, 'every shard must be run with the same options, topology and --set');
    if (file.shard.count !== f0.shard.count) throw bad(`${vs} cut the run into different numbers of shards (${file.shard.count}, ${f0.shard.count})`, 'give every shard of one --shard I/N run');
  }
  const n = f0.shard.count;
  const byIndex = new Map<number, string[]>();
  for (const { path, file } of files) byIndex.set(file.shard.index, [...(byIndex.get(file.shard.index) ?? []), path]);
  const twice = [...byIndex].filter(([, paths]) => paths.length > 1);
  if (twice.length > 0) throw bad(`${twice.map(([i, paths]) => `shard ${i}/${n} is given ${paths.length} times (${paths.join(', ')})`).join('; ')}`, 'give each shard once');
  const missing = Array.from({ length: n }, (_, i) => i + 1).filter((i) => !byIndex.has(i));
  if (missing.length > 0) {
    throw bad(`missing shard${missing.length > 1 ? 's' : ''} ${missing.map((i) => `${i}/${n}`).join(', ')} of this ${f0.command} run (have ${[...byIndex.keys()].sort((a, b) => a - b).map((i) => `${i}/${n}`).join(', ')})`, `run ${f0.command} with the same options and --shard ${missing[0]}/${n}, then merge every file`);
  }
  const jobs = jobsOf(f0.command, f0.parameters);
  const results: JobResult[] = new Array(jobs.length);
  for (const { path, file } of files) {
    const want = jobs.map((job, index) => ({ index, id: jobId(job, index) })).filter(({ index }) => inShard(index, file.shard));
    const have = file.jobs.map(({ index, id }) => ({ index, id }));
    if (file.totalJobs !== jobs.length || canonicalJson(have) !== canonicalJson(want)) {
      throw bad(`${path} (shard ${shardName(file.shard)}) holds ${have.length} job${have.length === 1 ? '' : 's'} of ${file.totalJobs}, not its share of this run (${want.length} of ${jobs.length}, ${SHARD_ASSIGNMENT})`, 'it was edited or written by another dconnect; run that shard again');
    }
    for (const j of file.jobs) results[j.index] = j.result;
  }
  return { command: f0.command, parameters: f0.parameters, count: n, results, wallSeconds: files.reduce((s, f) => s + (Number(f.file.wallSeconds) || 0), 0) };
}
