import { DconnectError } from '../core/errors.js';
import { checkParamValues, numericParamPath, parameterPaths, parseNumbers, splitAssignment, withParam as setParam } from '../topology/params.js';
import type { Topology } from '../topology/schema.js';

/**
 * `sweep --param PATH=VALUES`. The path syntax, the aliases and the validation live in
 * topology/params.ts, shared with `--set PATH=VALUE`: one parser, one validator, the same errors.
 */

export interface SweepParam {
  /** As the user wrote it. */
  name: string;
  /** Path in the topology. */
  path: string[];
  values: number[];
}

/** Every numeric parameter of a topology, as dotted paths (plus the aliases). */
export function sweepablePaths(t: Topology): string[] {
  return parameterPaths(t, 'numeric');
}

/** A deep copy of `t` with `path` set to `value`. */
export function withParam(t: Topology, path: string[], value: number): Topology {
  return setParam(t, path, value);
}

/** Parses `--param path=values`, checking the path exists and every value gives a valid topology. */
export function parseSweepParam(t: Topology, spec: string): SweepParam {
  const { name, text } = splitAssignment(spec, '--param', 'host.lanes=1,2,4,8 or --param depth=1..8');
  const path = numericParamPath(t, name);
  const values = parseNumbers(name, text);
  if (values.length === 0 || values.length > 1000) throw new DconnectError('BAD_PARAM', `${name}: give 1 to 1000 values`);
  checkParamValues(t, name, path, values);
  return { name, path, values };
}
