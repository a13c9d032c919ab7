import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DconnectError } from '../../src/core/errors.js';
import { loadTopology, MAX_EXTENDS_DEPTH, mergeTopologyDocs, presetNames } from '../../src/topology/load.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const paper = loadTopology('paper-2012');

/** A fresh folder holding the given files. */
function files(contents: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'dconnect-extends-'));
  for (const [name, text] of Object.entries(contents)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

const fails = (path: string, re: RegExp) =>
  assert.throws(
    () => loadTopology(path),
    (e: unknown) => e instanceof DconnectError && e.code === 'BAD_TOPOLOGY' && re.test(`${e.message}\n${e.hint ?? ''}`),
    path,
  );

test('extends a preset: only what is given differs, sizes parsed, everything else the preset', () => {
  const dir = files({ 'small.yaml': 'extends: paper-2012\nname: small\nssd:\n  capacityBytes: 64MiB\n' });
  const t = loadTopology(join(dir, 'small.yaml'));
  assert.equal(t.name, 'small');
  assert.equal(t.ssd.capacityBytes, 64 * 2 ** 20);
  assert.deepEqual({ ...t, name: paper.name, ssd: { ...t.ssd, capacityBytes: paper.ssd.capacityBytes } }, paper);
  assert.ok(presetNames().includes('paper-2012'));
});

test('the shipped example extends paper-2012 with 64 MiB drives', () => {
  const t = loadTopology(join(ROOT, 'docs/examples/small-ssds.yaml'));
  assert.equal(t.ssd.capacityBytes, 64 * 2 ** 20);
  assert.equal(t.name, 'paper-2012-small-ssds');
  assert.deepEqual(t.boxes, paper.boxes);
});

test('extends a file (relative to the extending file, not the working directory), and chains', () => {
  const dir = files({
    'base/fast-ssd.yaml': 'extends: paper-2012\nname: fast\nssd:\n  writeMBps: 1000\n  link: { lanes: 4 }\n',
    'mid.yaml': 'extends: base/fast-ssd.yaml\nhost:\n  link:\n    lanes: 1\n',
    'deep/top.yaml': 'extends: ../mid.yaml\nname: top\nssd:\n  readMBps: 900\n',
  });
  const mid = loadTopology(join(dir, 'mid.yaml'));
  assert.equal(mid.name, 'fast');
  assert.equal(mid.host.link.lanes, 1);
  assert.equal(mid.ssd.writeMBps, 1000);
  const top = loadTopology(join(dir, 'deep/top.yaml'));
  assert.deepEqual([top.name, top.ssd.writeMBps, top.ssd.readMBps, top.host.link.lanes], ['top', 1000, 900, 1]);
  // Objects merge key by key, at every depth: the SSD link keeps the preset's generation and latency.
  assert.deepEqual(top.ssd.link, { ...paper.ssd.link, lanes: 4 });
  assert.deepEqual(top.host.link, { ...paper.host.link, lanes: 1 });
  assert.equal(top.ssd.readLatencyUs, paper.ssd.readLatencyUs);
});

test('lists replace: a file that gives boxes gives them whole', () => {
  const dir = files({ 'two-slots.yaml': 'extends: paper-2012\nboxes:\n  - name: b\n    slots:\n      - { kind: ssd, serial: ONLY }\n      - { kind: dc-buffer }\n' });
  const t = loadTopology(join(dir, 'two-slots.yaml'));
  assert.deepEqual(t.boxes, [{ name: 'b', slots: [{ kind: 'ssd', serial: 'ONLY' }, { kind: 'dc-buffer' }] }]);
  assert.deepEqual(mergeTopologyDocs({ a: [1, 2, 3], o: { x: 1, y: 2 } }, { a: [9], o: { y: 3 } }), { a: [9], o: { x: 1, y: 3 } });
});

test('a cycle is refused, naming the chain of files', () => {
  const dir = files({ 'a.yaml': 'extends: b.yaml\n', 'b.yaml': 'extends: a.yaml\n', 'self.yaml': 'extends: ./self.yaml\n' });
  fails(join(dir, 'a.yaml'), /extends forms a cycle: .*a\.yaml -> .*b\.yaml -> .*a\.yaml\n.*stop extending/);
  fails(join(dir, 'self.yaml'), /cycle: .*self\.yaml -> .*self\.yaml/);
});

test('a missing base is refused, naming the chain and where it looked', () => {
  const dir = files({ 'a.yaml': 'extends: b.yaml\n', 'b.yaml': 'extends: paper-2021\n', 'c.yaml': 'extends: 7\n' });
  fails(join(dir, 'a.yaml'), /a\.yaml -> .*b\.yaml: extends 'paper-2021', which is neither a preset nor a file \(looked for .*paper-2021\)\n.*presets? \(.*paper-2012/);
  fails(join(dir, 'c.yaml'), /'extends' must be a preset name or a file path, not 7/);
});

test(`a chain longer than ${MAX_EXTENDS_DEPTH} files is refused`, () => {
  const chain: Record<string, string> = { 'f0.yaml': 'extends: paper-2012\n' };
  for (let i = 1; i <= MAX_EXTENDS_DEPTH; i++) chain[`f${i}.yaml`] = `extends: f${i - 1}.yaml\n`;
  const dir = files(chain);
  assert.equal(loadTopology(join(dir, `f${MAX_EXTENDS_DEPTH - 2}.yaml`)).name, 'paper-2012', 'within the bound');
  fails(join(dir, `f${MAX_EXTENDS_DEPTH}.yaml`), new RegExp(`extends chains more than ${MAX_EXTENDS_DEPTH} files`));
});

test('the merged result is validated: an unknown or bad field is named by its path, with the chain', () => {
  const dir = files({
    'typo.yaml': 'extends: paper-2012\nssd:\n  capacity: 64MiB\n',
    'bad.yaml': 'extends: paper-2012\nhost:\n  link:\n    lanes: 3\n',
    'over.yaml': 'extends: bad.yaml\nname: fine\n',
    'list.yaml': 'extends: paper-2012\nboxes: []\n',
  });
  fails(join(dir, 'typo.yaml'), /typo\.yaml: invalid topology \(after extends: .*typo\.yaml -> paper-2012 \(preset\)\):\n {2}ssd\.capacity: not a field of the topology/);
  fails(join(dir, 'bad.yaml'), /host\.link\.lanes: lanes must be one of 1, 2, 4, 8, 16/);
  fails(join(dir, 'over.yaml'), /over\.yaml: invalid topology \(after extends: .*over\.yaml -> .*bad\.yaml -> paper-2012 \(preset\)\):\n {2}host\.link\.lanes/);
  fails(join(dir, 'list.yaml'), /boxes: Array must contain at least 1/);
});
