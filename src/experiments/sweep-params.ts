import { DconnectError } from '../core/errors.js';
import { parseSize } from '../core/units.js';
import { topologySchema, type Topology } from '../topology/schema.js';

/** Short names users type, for paths that live deeper in the topology. */
const ALIASES: Record<string, string> = {
  'host.lanes': 'host.link.lanes',
  'host.generation': 'host.link.generation',
  'ssd.lanes': 'ssd.link.lanes',
  'ssd.generation': 'ssd.link.generation',
  'dcBuffer.lanes': 'dcBuffer.link.lanes',
  'dcBuffer.generation': 'dcBuffer.link.generation',
  depth: 'copy.depth',
  chunk: 'copy.chunkBytes',
};

export interface SweepParam {
  /** As the user wrote it. */
  name: string;
  /** Path in the topology. */
  path: string[];
  values: number[];
}

/** Every numeric parameter of a topology, as dotted paths (plus the aliases). */
export function sweepablePaths(t: Topology): string[] {
  const out: string[] = [];
  const walk = (o: unknown, prefix: string) => {
    if (typeof o === 'number') out.push(prefix);
    else if (o && typeof o === 'object' && !Array.isArray(o)) for (const [k, v] of Object.entries(o)) walk(v, prefix ? `${prefix}.${k}` : k);
  };
  walk(t, '');
  return [...Object.keys(ALIASES), ...out].sort();
}

function get(t: unknown, path: string[]): unknown {
  let o: unknown = t;
  for (const k of path) o = o && typeof o === 'object' ? (o as Record<string, unknown>)[k] : undefined;
  return o;
}

/** A deep copy of `t` with `path` set to `value`. */
export function withParam(t: Topology, path: string[], value: number): Topology {
  const copy = structuredClone(t);
  let o = copy as unknown as Record<string, unknown>;
  for (const k of path.slice(0, -1)) o = o[k] as Record<string, unknown>;
  o[path[path.length - 1]] = value;
  return copy;
}

/** Values: `1,2,4,8`, a range `1..8`, sizes with units `64KiB,128KiB`. */
function parseValues(name: string, text: string): number[] {
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

/** Parses `--param path=values`, checking the path exists and every value gives a valid topology. */
export function parseSweepParam(t: Topology, spec: string): SweepParam {
  const eq = spec.indexOf('=');
  if (eq < 1) throw new DconnectError('BAD_PARAM', `--param '${spec}' is not PATH=VALUES`, 'e.g. --param host.lanes=1,2,4,8 or --param depth=1..8');
  const name = spec.slice(0, eq).trim();
  const path = (ALIASES[name] ?? name).split('.');
  if (typeof get(t, path) !== 'number') {
    throw new DconnectError('BAD_PARAM', `'${name}' is not a numeric parameter of topology '${t.name}'`, `valid parameters: ${sweepablePaths(t).join(', ')}`);
  }
  const values = parseValues(name, spec.slice(eq + 1));
  if (values.length === 0 || values.length > 1000) throw new DconnectError('BAD_PARAM', `${name}: give 1 to 1000 values`);
  for (const v of values) {
    const r = topologySchema.safeParse(withParam(t, path, v));
    if (!r.success) {
      const why = r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
      throw new DconnectError('BAD_PARAM', `${name}=${v} is not valid: ${why}`);
    }
  }
  return { name, path, values };
}
