import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { deviceKinds } from '../../src/topology/device-registry.js';
import { loadTopology } from '../../src/topology/load.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const DOC = readFileSync(`${ROOT}docs/calibration.md`, 'utf8');

function leaves(o: unknown, prefix = ''): [string, unknown][] {
  if (o && typeof o === 'object' && !Array.isArray(o)) return Object.entries(o).flatMap(([k, v]) => leaves(v, prefix ? `${prefix}.${k}` : k));
  return Array.isArray(o) || prefix === 'name' ? [] : [[prefix, o]];
}

/** The text of the `## ` section whose heading starts with `heading`, up to the next `## `. */
function section(heading: string): string {
  const start = DOC.indexOf(`\n${heading}`);
  assert.ok(start >= 0, `docs/calibration.md has a section '${heading}'`);
  const end = DOC.indexOf('\n## ', start + 1);
  return DOC.slice(start, end < 0 ? undefined : end);
}

/** Parameter rows (`| path | value | reason |`) of a section: path -> [value, reason]. */
function rows(text: string): Map<string, [string, string]> {
  const out = new Map<string, [string, string]>();
  for (const m of text.matchAll(/^\| ([a-zA-Z]+\.[a-zA-Z.]+) \| ([^|]+) \| (.*) \|$/gm)) out.set(m[1], [m[2].trim(), m[3].trim()]);
  return out;
}

/** The topology's parameter blocks: the fixed ones and each device kind's (`ssd`, `dcBuffer`; topology/device-registry.ts). */
const BLOCKS = new RegExp(`^(${['host', 'pcie', 'expether', 'ethernet', ...deviceKinds.map((k) => k.paramsKey), 'copy'].join('|')})\\.`);

/** Every parameter of the preset has a row with its value, and every row is a parameter of the preset. */
function agree(preset: string, documented: Map<string, [string, string]>): void {
  const params = leaves(loadTopology(preset));
  assert.ok(params.length > 40);
  for (const [path, value] of params) {
    assert.ok(documented.has(path), `${preset}: ${path} is in the preset but not in docs/calibration.md`);
    assert.equal(documented.get(path)![0], String(value), `${preset}: ${path}: preset ${value}, docs ${documented.get(path)![0]}`);
  }
  for (const path of documented.keys()) if (BLOCKS.test(path)) assert.ok(params.some(([p]) => p === path), `${preset}: ${path} is documented but not in the preset`);
}

test('docs/calibration.md and the paper-2012 preset agree, parameter for parameter', () => {
  agree('paper-2012', rows(section('## Parameters')));
});

test('docs/calibration.md and the modern preset agree, and every modern parameter has a source or says what it is', () => {
  const text = section('## The `modern` preset');
  const table = text.slice(text.indexOf('\n### Parameters'), text.indexOf('\n### ', text.indexOf('\n### Parameters') + 1));
  const documented = rows(table);
  agree('modern', documented);
  // Sources: "- [M3] what ...: https://..." (a source may continue on the next lines).
  const list = text.slice(text.indexOf('\nSources:'), text.indexOf('\n### ', text.indexOf('\nSources:')));
  const sources = new Map<string, string>();
  for (const item of list.split(/\n- (?=\[M\d+\] )/).slice(1)) sources.set(/^\[(M\d+)\]/.exec(item)![1], item);
  assert.ok(sources.size >= 10, `${sources.size} sources`);
  for (const [id, body] of sources) assert.match(body, /https:\/\/\S+/, `source ${id} gives an address`);
  const cited = new Set<string>();
  for (const [path, [, reason]] of documented) {
    const refs = [...reason.matchAll(/\[(M\d+)\]/g)].map((m) => m[1]);
    for (const r of refs) {
      assert.ok(sources.has(r), `${path} cites ${r}, which the source list does not define`);
      cited.add(r);
    }
    // A value is sourced, derived from sourced values, the paper-2012 one (documented there), or assumed, said so.
    assert.ok(refs.length > 0 || /\*\*assumed\*\*|^derived|^as paper-2012/.test(reason), `${path}: cite a source [Mn], or say 'derived', 'as paper-2012' or **assumed**`);
  }
  for (const id of sources.keys()) assert.ok(cited.has(id), `source ${id} is listed but no parameter cites it`);
});

test('docs/calibration.md documents every NIC parameter of the paper-2012-nic preset, with its value', () => {
  const documented = rows(section('## The `paper-2012-nic` preset'));
  const params = leaves(loadTopology('paper-2012-nic')).filter(([p]) => p.startsWith('nic.'));
  assert.ok(params.length >= 14, `${params.length} NIC parameters`);
  for (const [path, value] of params) {
    assert.ok(documented.has(path), `paper-2012-nic: ${path} is in the preset but not in docs/calibration.md`);
    assert.equal(documented.get(path)![0], String(value), `paper-2012-nic: ${path}: preset ${value}, docs ${documented.get(path)![0]}`);
  }
  for (const path of documented.keys()) assert.ok(params.some(([p]) => p === path), `${path} is documented but not in the preset`);
});

test('docs/calibration.md gives the CMB\'s optional SSD fields with the values the code uses when they are absent', async () => {
  const { CMB_DEFAULTS } = await import('../../src/topology/kinds/ssd.js');
  const documented = rows(section('## The NVMe CMB'));
  assert.deepEqual([...documented.keys()], ['ssd.cmbSizeBytes', 'ssd.cmbMBps', 'ssd.cmbLatencyNs']);
  assert.equal(documented.get('ssd.cmbSizeBytes')![0], '0');
  assert.equal(documented.get('ssd.cmbMBps')![0], String(CMB_DEFAULTS.cmbMBps));
  assert.equal(documented.get('ssd.cmbLatencyNs')![0], String(CMB_DEFAULTS.cmbLatencyNs));
  for (const p of ['paper-2012', 'modern']) assert.equal(loadTopology(p).ssd.cmbSizeBytes, undefined, `${p} gives no CMB`);
});
