import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { DconnectError } from '../core/errors.js';
import { topologySchema, type Topology } from './schema.js';

const PRESET_DIR = fileURLToPath(new URL('../../../presets/', import.meta.url));
export const DEFAULT_PRESET = 'paper-2012';

/** Names of the presets shipped with the package. */
export function presetNames(): string[] {
  return ['paper-2012'];
}

/** Parses and validates a topology document; errors name the field and the problem. */
export function parseTopology(text: string, source: string): Topology {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (e) {
    throw new DconnectError('BAD_TOPOLOGY', `${source}: not valid YAML: ${(e as Error).message.split('\n')[0]}`, 'fix the YAML syntax');
  }
  const r = topologySchema.safeParse(doc);
  if (!r.success) {
    const problems = r.error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`).join('\n');
    throw new DconnectError('BAD_TOPOLOGY', `${source}: invalid topology:\n${problems}`, `compare with the shipped preset: ${PRESET_DIR}${DEFAULT_PRESET}.yaml`);
  }
  return r.data;
}

/** Loads a preset by name (`paper-2012`) or a topology file by path. */
export function loadTopology(nameOrPath: string = DEFAULT_PRESET): Topology {
  const preset = `${PRESET_DIR}${nameOrPath}.yaml`;
  const file = presetNames().includes(nameOrPath) ? preset : nameOrPath;
  if (!existsSync(file)) {
    throw new DconnectError('BAD_TOPOLOGY', `no topology file or preset '${nameOrPath}'`, `give a path to a YAML file or one of the presets: ${presetNames().join(', ')}`);
  }
  return parseTopology(readFileSync(file, 'utf8'), file);
}
