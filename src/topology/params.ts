import { closest } from '../core/suggest.js';
import { parse as parseYaml } from 'yaml';
import type { ZodIssue } from 'zod';
import { DconnectError } from '../core/errors.js';
import { parseSize } from '../core/units.js';
import { deviceKinds } from './device-registry.js';
import { topologySchema, type Topology } from './schema.js';

/**
 * Parameter paths: one syntax for `sweep --param PATH=VALUES` and `--set PATH=VALUE` (copy, repro,
 * sweep, devices). A path is the dotted field names of the topology (`ssd.link.lanes`), list entries
 * by index (`boxes.0.slots.1.serial`), or one of the short aliases below. Both flags check the path
 * and validate the topology that results with the same schema the topology file passes, so a bad
 * path or value gets the same error from either.
 */

/** Short names users type, for paths that live deeper in the topology (each device kind's block has a link: `ssd.lanes`, `dcBuffer.lanes`). */
export const PARAM_ALIASES: Readonly<Record<string, string>> = {
  'host.lanes': 'host.link.lanes',
  'host.generation': 'host.link.generation',
  ...Object.fromEntries(
    deviceKinds.flatMap((k) => [
      [`${k.paramsKey}.lanes`, `${k.paramsKey}.link.lanes`],
      [`${k.paramsKey}.generation`, `${k.paramsKey}.link.generation`],
    ]),
  ),
  depth: 'copy.depth',
  chunk: 'copy.chunkBytes',
};

/** Keys that would reach an object's prototype instead of a field. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'prototype', 'constructor']);

/** A `--set` as parsed: what the user wrote, where it lands, and the value. */
export interface Setting {
  /** As the user wrote it, e.g. `host.lanes=1` (for reports). */
  spec: string;
  /** The option as errors show it: `--set host.lanes=1`, or an alias such as `--host-lanes 1`. */
  shown: string;
  /** The name before `=`, e.g. `host.lanes`. */
  name: string;
  /** The path in the topology, e.g. ['host', 'link', 'lanes']. */
  path: string[];
  value: unknown;
}

/** A `--set` as results record it: as written, and the full path it changed. */
export interface Override {
  set: string;
  path: string;
}

export const overridesOf = (settings: readonly Setting[]): Override[] => settings.map((s) => ({ set: s.spec, path: s.path.join('.') }));

/** The overrides that change `path` (or an object holding it): an experiment that sets it itself supersedes them. */
export const overridesOn = (overrides: readonly Override[], path: string): Override[] => overrides.filter((o) => path === o.path || path.startsWith(`${o.path}.`));

/** `host.lanes` -> ['host', 'link', 'lanes']; `boxes.0.name` -> ['boxes', '0', 'name']. */
export function resolveParamPath(name: string): string[] {
  const path = (PARAM_ALIASES[name] ?? name).split('.');
  if (path.some((k) => k === '' || FORBIDDEN_KEYS.has(k))) {
    throw new DconnectError('BAD_PARAM', `'${name}' is not a parameter path`, 'write dotted field names, list entries by index: host.link.lanes, ssd.writeMBps, boxes.0.slots.1.serial');
  }
  return path;
}

/** The value at `path`, or undefined where the path leads nowhere. */
export function paramAt(t: unknown, path: string[]): unknown {
  let o: unknown = t;
  for (const k of path) o = o !== null && typeof o === 'object' && Object.hasOwn(o, k) ? (o as Record<string, unknown>)[k] : undefined;
  return o;
}

/**
 * Every leaf of a topology as a dotted path (list entries by index), plus the aliases: the numeric
 * ones (what a sweep can vary) or every number and string (what --set can change).
 */
export function parameterPaths(t: Topology, which: 'numeric' | 'all'): string[] {
  const out: string[] = [];
  const walk = (o: unknown, prefix: string) => {
    if (typeof o === 'number' || (which === 'all' && typeof o === 'string')) out.push(prefix);
    else if (o !== null && typeof o === 'object') for (const [k, v] of Object.entries(o)) walk(v, prefix ? `${prefix}.${k}` : k);
  };
  walk(t, '');
  return [...Object.keys(PARAM_ALIASES), ...out].sort();
}

/**
 * A deep copy of `t` with `path` set to `value`. Absent fields on the way are created as objects (an
 * optional section such as a slot's `ssd` overrides); the schema then decides whether they exist. A
 * path through a number or string, or past the end of a list, is not a parameter.
 */
export function withParam(t: Topology, path: string[], value: unknown): Topology {
  return setAt(t, path, value, 'all');
}

function setAt(t: Topology, path: string[], value: unknown, which: 'numeric' | 'all'): Topology {
  const copy = structuredClone(t);
  let o = copy as unknown as Record<string, unknown>;
  for (let i = 0; i < path.length; i++) {
    const k = path[i];
    if (Array.isArray(o) && !(/^\d+$/.test(k) && Number(k) < o.length)) throw unknownPath(t, path.slice(0, i + 1).join('.'), which);
    if (i === path.length - 1) break;
    if (!Object.hasOwn(o, k)) o[k] = {};
    const next = o[k];
    if (next === null || typeof next !== 'object') throw unknownPath(t, path.slice(0, i + 2).join('.'), which);
    o = next as Record<string, unknown>;
  }
  o[path[path.length - 1]] = value;
  return copy;
}

function unknownPath(t: Topology, name: string, which: 'numeric' | 'all'): DconnectError {
  const what = which === 'numeric' ? 'a numeric parameter' : 'a parameter';
  const paths = parameterPaths(t, which);
  const guess = closest(name, paths);
  return new DconnectError('BAD_PARAM', `'${name}' is not ${what} of topology '${t.name}'${guess ? `; did you mean ${guess}?` : ''}`, `valid parameters: ${paths.join(', ')}`);
}

/** Splits `PATH=VALUE`; `flag` and `example` make the error say what was expected. */
export function splitAssignment(spec: string, flag: string, example: string): { name: string; text: string } {
  const eq = spec.indexOf('=');
  if (eq < 1) throw new DconnectError('BAD_PARAM', `${flag} '${spec}' is not ${flag === '--param' ? 'PATH=VALUES' : 'PATH=VALUE'}`, `e.g. ${flag} ${example}`);
  return { name: spec.slice(0, eq).trim(), text: spec.slice(eq + 1) };
}

/** Numbers: `1,2,4,8`, a range `1..8`, sizes with units `64KiB,128KiB`. */
export function parseNumbers(name: string, text: string): number[] {
  const range = /^\s*(\d+)\s*\.\.\s*(\d+)\s*$/.exec(text);
  if (range) {
    const [a, b] = [Number(range[1]), Number(range[2])];
    if (b < a || b - a > 1000) throw new DconnectError('BAD_PARAM', `range '${text}' for ${name} must go up, with at most 1000 steps`);
    return Array.from({ length: b - a + 1 }, (_, i) => a + i);
  }
  return text.split(',').map((v) => {
    const s = v.trim();
    if (/^-?\d+(\.\d+)?(e-?\d+)?$/i.test(s)) return Number(s);
    try {
      return parseSize(s, `value for ${name}`);
    } catch {
      throw new DconnectError('BAD_PARAM', `'${s}' is not a value for ${name}`, 'give numbers (1,2,4), a range (1..8) or sizes with units (64KiB,128KiB)');
    }
  });
}

/** One zod issue as `path: message`; an unknown key is named by its own path, as not a field of `of` (what the document is). */
export const describeIssueOf =
  (of: string) =>
  (i: ZodIssue): string => {
    if (i.code === 'unrecognized_keys') return i.keys.map((k) => `${[...i.path, k].join('.')}: not a field of ${of}`).join('; ');
    return `${i.path.join('.') || '(root)'}: ${i.message}`;
  };

/** One zod issue of a topology as `path: message`. */
export const describeIssue = describeIssueOf('the topology');

/** Validates a topology; the parsed result (sizes as numbers) or the schema's issues. */
export function validateTopology(doc: unknown): { ok: true; topology: Topology } | { ok: false; issues: ZodIssue[] } {
  const r = topologySchema.safeParse(doc);
  return r.success ? { ok: true, topology: r.data } : { ok: false, issues: r.error.issues };
}

/** The paths an issue names (an unknown key names the key's own path). */
const issuePaths = (i: ZodIssue): string[] => (i.code === 'unrecognized_keys' ? i.keys.map((k) => [...i.path, k].join('.')) : [i.path.join('.')]);

/** `a` is `b` or lies inside it (dotted paths; '' is the root). */
const within = (a: string, b: string) => b === '' || a === b || a.startsWith(`${b}.`);

/** An issue says the key at (or above) `path` does not exist: the path is unknown, not the value bad. */
const unknownKeyOn = (i: ZodIssue, path: string[]) => i.code === 'unrecognized_keys' && issuePaths(i).some((p) => within(path.join('.'), p));

/**
 * The path of `name` if it holds a number in `t`, or may hold one (an absent optional field the schema
 * knows); else the error `sweep --param` gives, listing the numeric parameters.
 */
export function numericParamPath(t: Topology, name: string): string[] {
  const path = resolveParamPath(name);
  const current = paramAt(t, path);
  if (current === undefined) assertKnownToSchema(t, name, path, 'numeric');
  else if (typeof current !== 'number') throw unknownPath(t, name, 'numeric');
  return path;
}

/** An absent field is a parameter only if the schema knows it (an optional one): setting it makes no unknown key. */
function assertKnownToSchema(t: Topology, name: string, path: string[], which: 'numeric' | 'all'): void {
  const r = validateTopology(setAt(t, path, null, which));
  if (!r.ok && r.issues.some((i) => unknownKeyOn(i, path))) throw unknownPath(t, name, which);
}

/** Each value at `path` gives a valid topology, or the error names the value and what the schema wants. */
export function checkParamValues(t: Topology, name: string, path: string[], values: number[]): void {
  for (const v of values) {
    const r = validateTopology(setAt(t, path, v, 'numeric'));
    if (!r.ok) throw new DconnectError('BAD_PARAM', `${name}=${v} is not valid: ${r.issues.map(describeIssue).join('; ')}`);
  }
}

/**
 * Parses one `--set PATH=VALUE` against `t`. The value is read as the field's type: a number (with
 * size units) where the topology holds a number, the text itself where it holds a string, and YAML
 * (flow lists and maps too: `[...]`, `{...}`) where it holds a list or an object, which it replaces.
 */
export function parseSetting(t: Topology, spec: string, shown = `--set ${spec}`): Setting {
  const { name, text } = splitAssignment(spec, '--set', 'host.lanes=1 or --set ssd.capacityBytes=64MiB');
  const path = resolveParamPath(name);
  const current = paramAt(t, path);
  if (current === undefined) assertKnownToSchema(t, name, path, 'all');
  let value: unknown;
  if (typeof current === 'number' || (current === undefined && looksNumeric(text))) {
    const values = parseNumbers(name, text);
    if (values.length !== 1) throw new DconnectError('BAD_PARAM', `${shown}: --set takes one value, not ${values.length}`, 'to run several values, use sweep --param');
    value = values[0];
  } else if (typeof current === 'string') {
    value = text.trim();
  } else {
    try {
      value = parseYaml(text);
    } catch (e) {
      throw new DconnectError('BAD_PARAM', `${shown}: '${text}' is not a YAML value: ${(e as Error).message.split('\n')[0]}`, 'lists as [a, b], objects as {key: value}');
    }
  }
  withParam(t, path, value); // throws for a path through a scalar or past a list's end
  return { spec: `${name}=${text.trim()}`, shown, name, path, value };
}

const looksNumeric = (text: string) => /^\s*[-\d.]/.test(text) && !/^\s*[[{]/.test(text);

/**
 * Applies `--set`s in order and validates the result once (so changes that only make sense together,
 * such as a slot's kind and its serial, may be given together). An error names the `--set` it comes
 * from, like sweep's: an unknown path lists the valid ones, a bad value says what the schema wants.
 */
export function applySettings(t: Topology, specs: readonly (string | { spec: string; shown: string })[]): { topology: Topology; settings: Setting[] } {
  if (specs.length === 0) return { topology: t, settings: [] };
  const settings: Setting[] = [];
  let doc = t;
  for (const x of specs) {
    const s = typeof x === 'string' ? parseSetting(doc, x) : parseSetting(doc, x.spec, x.shown);
    settings.push(s);
    doc = withParam(doc, s.path, s.value);
  }
  const r = validateTopology(doc);
  if (r.ok) return { topology: r.topology, settings };
  for (const i of r.issues) {
    const s = settings.find((x) => unknownKeyOn(i, x.path));
    if (s) throw unknownPath(t, s.name, 'all');
  }
  // The last --set whose path holds the issue's, or lies inside it (a field the schema wanted there).
  const blame = (i: ZodIssue) => [...settings].reverse().find((s) => issuePaths(i).some((p) => within(p, s.path.join('.')) || within(s.path.join('.'), p)));
  const culprits = [...new Set(r.issues.map((i) => blame(i)?.shown ?? settings.map((s) => s.shown).join(' ')))];
  throw new DconnectError('BAD_PARAM', `${culprits.join(', ')} ${culprits.length === 1 ? 'is' : 'are'} not valid: ${r.issues.map(describeIssue).join('; ')}`);
}
