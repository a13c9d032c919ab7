import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadTopology } from '../../src/topology/load.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

function leaves(o: unknown, prefix = ''): [string, unknown][] {
  if (o && typeof o === 'object' && !Array.isArray(o)) return Object.entries(o).flatMap(([k, v]) => leaves(v, prefix ? `${prefix}.${k}` : k));
  return Array.isArray(o) || prefix === 'name' ? [] : [[prefix, o]];
}

test('docs/calibration.md and the paper-2012 preset agree, parameter for parameter', () => {
  const full = readFileSync(`${ROOT}docs/calibration.md`, 'utf8');
  const start = full.indexOf('## Parameters');
  const doc = full.slice(start, full.indexOf('\n## ', start + 1));
  const rows = new Map<string, string>();
  for (const m of doc.matchAll(/^\| ([a-zA-Z]+\.[a-zA-Z.]+) \| ([^|]+) \|/gm)) rows.set(m[1], m[2].trim());
  const preset = leaves(loadTopology('paper-2012'));
  assert.ok(preset.length > 40);
  for (const [path, value] of preset) {
    assert.ok(rows.has(path), `${path} is in the preset but not in docs/calibration.md`);
    assert.equal(rows.get(path), String(value), `${path}: preset ${value}, docs ${rows.get(path)}`);
  }
  for (const path of rows.keys()) if (/^(host|pcie|expether|ethernet|ssd|dcBuffer|copy)\./.test(path) && !path.includes(' ')) assert.ok(preset.some(([p]) => p === path), `${path} is documented but not in the preset`);
});
