import { DconnectError } from '../core/errors.js';
import type { FidelityMode } from '../runtime/copy.js';
import type { Granularity } from '../runtime/moves.js';
import type { Job } from './jobs.js';
import { METRICS } from './metrics.js';
import { FIGURES, reproJobs, type ReproPlan } from './repro.js';
import { filesSizes } from './files.js';
import type { ShardCommand } from './shard.js';
import { checkParamValues, numericParamPath, validateTopology, type Override } from '../topology/params.js';
import { sweepJobs, type SweepPlan } from './sweep.js';

/**
 * A run's plan as the plain data a shard file carries (`parameters`), and back: merge rebuilds the
 * plan, and from it the job list and the result, from the files alone. Reading back validates what a
 * file says as the CLI validates options, since a file may have been edited.
 */

/** The granularity, carried only when burst: per-TLP runs' parameters (and their digests) stay as they were. */
const burstOf = (p: { granularity?: Granularity }) => (p.granularity === 'burst' ? { granularity: 'burst' as const } : {});

export function reproParameters(p: ReproPlan): Record<string, unknown> {
  return { topology: p.topology, overrides: p.overrides ?? [], runs: p.runs, sizeBytes: p.sizeBytes, only: p.only ?? null, fidelity: p.fidelity ?? 'fast', ...burstOf(p), ...(p.maxFileBytes !== undefined ? { maxFileBytes: p.maxFileBytes } : {}) };
}

export function sweepParameters(p: SweepPlan): Record<string, unknown> {
  return { topology: p.topology, overrides: p.overrides ?? [], params: p.params, via: p.via, sizeBytes: p.sizeBytes, seed: p.seed, metric: p.metric, fidelity: p.fidelity ?? 'fast', ...burstOf(p) };
}

const bad = (what: string) => new DconnectError('BAD_SHARDS', `shard parameters: ${what}`, 'the file was edited or written by another dconnect; run the shards again');

function common(p: Record<string, unknown>) {
  const v = validateTopology(p.topology);
  if (!v.ok) throw bad('the topology is not valid');
  const overrides = p.overrides;
  if (!Array.isArray(overrides) || !overrides.every((o) => o && typeof o.set === 'string' && typeof o.path === 'string')) throw bad('overrides is not a list of --set');
  if (!Number.isSafeInteger(p.sizeBytes) || (p.sizeBytes as number) <= 0) throw bad('sizeBytes is not a size');
  if (p.fidelity !== 'fast' && p.fidelity !== 'full') throw bad(`fidelity ${String(p.fidelity)} is not fast or full`);
  const granularity = p.granularity ?? 'tlp'; // absent in shard files written before burst granularity
  if (granularity !== 'tlp' && granularity !== 'burst') throw bad(`granularity ${String(granularity)} is not tlp or burst`);
  return { topology: v.topology, overrides: overrides as Override[], sizeBytes: p.sizeBytes as number, fidelity: p.fidelity as FidelityMode, ...burstOf({ granularity: granularity as Granularity }) };
}

export function reproPlanOf(p: Record<string, unknown>): ReproPlan {
  const c = common(p);
  if (!Number.isSafeInteger(p.runs) || (p.runs as number) < 1 || (p.runs as number) > 100) throw bad('runs is not 1..100');
  const only = p.only;
  if (only !== null && !(Array.isArray(only) && only.length > 0 && only.every((f) => (FIGURES as readonly unknown[]).includes(f)))) throw bad(`only is not a list of ${FIGURES.join(', ')}`);
  const maxFileBytes = p.maxFileBytes; // absent unless --max-file-size was given
  if (maxFileBytes !== undefined) {
    if (!Number.isSafeInteger(maxFileBytes)) throw bad('maxFileBytes is not a size');
    filesSizes(maxFileBytes as number);
  }
  return { ...c, runs: p.runs as number, only: (only ?? undefined) as ReproPlan['only'], ...(maxFileBytes !== undefined ? { maxFileBytes: maxFileBytes as number } : {}) };
}

export function sweepPlanOf(p: Record<string, unknown>): SweepPlan {
  const c = common(p);
  if (p.via !== 'dc-buffer' && p.via !== 'host') throw bad('via is not dc-buffer or host');
  if (!Number.isSafeInteger(p.seed)) throw bad('seed is not an integer');
  if (!(METRICS as readonly unknown[]).includes(p.metric)) throw bad('metric is not a metric');
  if (!Array.isArray(p.params) || p.params.length < 1 || p.params.length > 3) throw bad('params is not 1 to 3 parameters');
  const params = p.params.map((x: { name?: unknown; values?: unknown }) => {
    if (typeof x?.name !== 'string' || !Array.isArray(x.values) || !x.values.every((v) => typeof v === 'number')) throw bad('a parameter is not a name and numbers');
    const path = numericParamPath(c.topology, x.name);
    checkParamValues(c.topology, x.name, path, x.values as number[]);
    return { name: x.name, path, values: x.values as number[] };
  });
  return { ...c, params, via: p.via, seed: p.seed as number, metric: p.metric as SweepPlan['metric'] };
}

/** The whole run's jobs, in canonical order, from a shard file's parameters. */
export function jobsOf(command: ShardCommand, parameters: Record<string, unknown>): Job[] {
  return command === 'repro' ? reproJobs(reproPlanOf(parameters)) : sweepJobs(sweepPlanOf(parameters));
}
