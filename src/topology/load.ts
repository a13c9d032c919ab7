import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { DconnectError } from '../core/errors.js';
import { describeIssue, validateTopology } from './params.js';
import type { Topology } from './schema.js';

const PRESET_DIR = fileURLToPath(new URL('../../../presets/', import.meta.url));
export const DEFAULT_PRESET = 'paper-2012';

/**
 * How many files one topology may chain through `extends` (itself included): a file extending a file
 * ... extending a preset. A bound, so a long or runaway chain fails with the chain named instead of
 * recursing; eight is far more than a testbed and its variants need.
 */
export const MAX_EXTENDS_DEPTH = 8;

/** Names of the presets shipped with the package: the YAML files in /presets. */
export function presetNames(): string[] {
  return readdirSync(PRESET_DIR)
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => f.slice(0, -'.yaml'.length))
    .sort();
}

/** A preset name or a file path as the topology file it names (a preset name wins over a file). */
function fileOf(nameOrPath: string, relativeTo: string): string {
  return presetNames().includes(nameOrPath) ? `${PRESET_DIR}${nameOrPath}.yaml` : resolve(relativeTo, nameOrPath);
}

/** A file as errors show it: a preset by name, a file relative to the working directory. */
function shown(file: string): string {
  if (dirname(file) === resolve(PRESET_DIR)) return `${file.slice(PRESET_DIR.length, -'.yaml'.length)} (preset)`;
  const r = relative(process.cwd(), file);
  return r.startsWith('..') ? file : r;
}

const chainText = (files: string[]) => files.map(shown).join(' -> ');

function parseDoc(text: string, source: string): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (e) {
    throw new DconnectError('BAD_TOPOLOGY', `${source}: not valid YAML: ${(e as Error).message.split('\n')[0]}`, 'fix the YAML syntax');
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new DconnectError('BAD_TOPOLOGY', `${source}: a topology is a YAML mapping (name:, host:, ...), not ${doc === null ? 'an empty document' : Array.isArray(doc) ? 'a list' : typeof doc}`, `compare with the shipped preset: ${PRESET_DIR}${DEFAULT_PRESET}.yaml`);
  }
  return doc as Record<string, unknown>;
}

/**
 * `over` laid on `base`: objects merge key by key, anything else (numbers, strings, lists) in `over`
 * replaces what `base` has. So a file gives only what differs, and a list (the boxes, a box's slots)
 * is always given whole.
 */
export function mergeTopologyDocs(base: unknown, over: unknown): unknown {
  const isMap = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
  if (!isMap(base) || !isMap(over)) return over;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = Object.hasOwn(base, k) ? mergeTopologyDocs(base[k], v) : v;
  return out;
}

/**
 * The document `doc` (read from `chain`'s last file) with its `extends` resolved: the base (a preset
 * name, or a file path relative to the extending file) loaded the same way, and `doc` merged on it.
 */
function resolveExtends(doc: Record<string, unknown>, chain: string[]): { doc: Record<string, unknown>; chain: string[] } {
  if (!Object.hasOwn(doc, 'extends')) return { doc, chain };
  const { extends: ref, ...rest } = doc;
  const file = chain[chain.length - 1];
  if (typeof ref !== 'string' || ref.trim() === '') {
    throw new DconnectError('BAD_TOPOLOGY', `${chainText(chain)}: 'extends' must be a preset name or a file path, not ${JSON.stringify(ref)}`, `e.g. extends: ${DEFAULT_PRESET}; presets: ${presetNames().join(', ')}`);
  }
  const base = fileOf(ref, dirname(file));
  if (chain.includes(base)) {
    throw new DconnectError('BAD_TOPOLOGY', `extends forms a cycle: ${chainText([...chain, base])}`, 'one of these files must stop extending the other');
  }
  if (chain.length >= MAX_EXTENDS_DEPTH) {
    throw new DconnectError('BAD_TOPOLOGY', `extends chains more than ${MAX_EXTENDS_DEPTH} files: ${chainText([...chain, base])}`, `flatten the chain: copy what an intermediate file gives into the one that extends it`);
  }
  if (!existsSync(base)) {
    throw new DconnectError('BAD_TOPOLOGY', `${chainText(chain)}: extends '${ref}', which is neither a preset nor a file (looked for ${base})`, `give a preset (${presetNames().join(', ')}) or a path relative to ${shown(file)}`);
  }
  const resolved = resolveExtends(parseDoc(readFileSync(base, 'utf8'), shown(base)), [...chain, base]);
  return { doc: mergeTopologyDocs(resolved.doc, rest) as Record<string, unknown>, chain: resolved.chain };
}

/** Checks a whole (merged) document against the schema; errors name each field by its path. */
function validated(doc: Record<string, unknown>, chain: string[]): Topology {
  const r = validateTopology(doc);
  if (r.ok) return r.topology;
  const problems = r.issues.map((i) => `  ${describeIssue(i)}`).join('\n');
  const what = chain.length > 1 ? `invalid topology (after extends: ${chainText(chain)})` : 'invalid topology';
  // The nearest shipped preset the chain extends is the one to compare with (paper-2012-nic for a file extending it).
  const preset = chain.find((f) => dirname(f) === resolve(PRESET_DIR)) ?? `${PRESET_DIR}${DEFAULT_PRESET}.yaml`;
  throw new DconnectError('BAD_TOPOLOGY', `${shown(chain[0])}: ${what}:\n${problems}`, `compare with the shipped preset: ${preset}`);
}

/**
 * Parses and validates a topology document read from `source` (a file path: a relative `extends`
 * is resolved from its folder). Errors name the field and the problem.
 */
export function parseTopology(text: string, source: string): Topology {
  const file = resolve(source);
  const { doc, chain } = resolveExtends(parseDoc(text, shown(file)), [file]);
  return validated(doc, chain);
}

/**
 * Loads a preset by name (`paper-2012`) or a topology file by path. A file may say `extends: PRESET`
 * or `extends: other.yaml` and give only what differs; the merged result is validated whole.
 */
export function loadTopology(nameOrPath: string = DEFAULT_PRESET): Topology {
  const file = fileOf(nameOrPath, process.cwd());
  if (!existsSync(file)) {
    throw new DconnectError('BAD_TOPOLOGY', `no topology file or preset '${nameOrPath}'`, `give a path to a YAML file or one of the presets: ${presetNames().join(', ')}`);
  }
  return parseTopology(readFileSync(file, 'utf8'), file);
}
