import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dconnectIn as run } from '../helpers/cli-in-process.js';

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

test('repro writes JSON, SVG, PNG and the report, and --json prints one object', async () => {
  const out = mkdtempSync(join(tmpdir(), 'dconnect-repro-'));
  const r = await run('repro', '--runs', '1', '--size', '2MiB', '--out', out, '--json');
  const j = JSON.parse(r.stdout);
  assert.equal(j.fig5.bars.length, 4);
  assert.equal(j.fig6.points.length, 8);
  for (const f of ['fig5.json', 'fig6.json', 'fig5.svg', 'fig6.svg', 'fig5.png', 'fig6.png', 'report.md']) assert.ok(existsSync(join(out, f)), f);
  const png = readFileSync(join(out, 'fig5.png'));
  assert.deepEqual([...png.subarray(0, 8)], PNG_SIGNATURE);
  const svg = readFileSync(join(out, 'fig5.svg'), 'utf8');
  assert.match(svg, /Bandwidth \(MB\/s\)/);
  assert.match(svg, /paper \(Fig\. 5\)/);
  assert.match(readFileSync(join(out, 'report.md'), 'utf8'), /## Fidelity bounds/);
  assert.deepEqual(JSON.parse(readFileSync(join(out, 'fig6.json'), 'utf8')).fig6, j.fig6);
  assert.equal(j.fidelity.mode, 'fast', 'fast is the default');
  for (const b of j.fig5.bars) assert.equal(b.fidelity.moves, 1);
});

test('repro off a terminal prints one line per finished move on stderr; the report states fidelity and wall time', async () => {
  const out = mkdtempSync(join(tmpdir(), 'dconnect-repro-'));
  const r = await run('repro', '--runs', '1', '--size', '4MiB', '--only', 'fig6', '--fidelity', 'full', '--out', out);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stderr.split('\n').filter((l) => l.startsWith('repro: ['));
  assert.equal(lines.length, 8, r.stderr);
  for (const l of lines) assert.match(l, /^repro: \[\d\/8\] fig6 direct \d commands? seed 1: \d+\.\d\d MB\/s \(full, every TLP\) \d+\.\d s$/);
  assert.deepEqual(lines.map((l) => Number(/\[(\d)\//.exec(l)![1])), [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.match(r.stderr, /^repro: 8 moves of 4 MiB in [\d.]+ s wall; fidelity: full \(every TLP\)$/m);
  assert.match(r.stdout, /^Fig\. 6: .*; fidelity: full \(every TLP\)$/m);
  const report = readFileSync(join(out, 'report.md'), 'utf8');
  assert.match(report, /8 moves in [\d.]+ s of wall time/);
  assert.match(report, /## Method\n\nfidelity: full \(every TLP\)/);
  assert.match(readFileSync(join(out, 'fig6.svg'), 'utf8'), /fidelity: full/);
  for (const p of JSON.parse(readFileSync(join(out, 'fig6.json'), 'utf8')).fig6.points) assert.equal(p.fidelity.mode, 'full');
});

test('sweep off a terminal prints one line per point; its JSON gives each point\'s fidelity', async () => {
  const out = mkdtempSync(join(tmpdir(), 'dconnect-sweep-'));
  const r = await run('sweep', '--param', 'depth=1,2', '--size', '2MiB', '--threads', '1', '--fidelity', 'fast', '--out', out, '--json');
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stderr.split('\n').filter((l) => l.startsWith('sweep: ['));
  assert.equal(lines.length, 2, r.stderr);
  assert.match(lines[0], /^sweep: \[1\/2\] depth=1: \d+\.\d\d MB\/s \(fast, [^)]+\) \d+\.\d s$/);
  const j = JSON.parse(r.stdout);
  assert.equal(j.fidelity.mode, 'fast');
  for (const row of j.rows) assert.equal(row.fidelity.mode, 'fast');
  assert.deepEqual(JSON.parse(readFileSync(join(out, 'sweep.json'), 'utf8')).rows, j.rows);
});

test('sweep refuses an unknown parameter, listing the valid ones', async () => {
  const r = await run('sweep', '--param', 'ssd.speed=1,2');
  assert.equal(r.code, 2);
  assert.match(r.stderr, /BAD_PARAM/);
  assert.match(r.stderr, /ssd\.writeMBps/);
});

test('repro at a size too small for the paper\'s bounds exits 1 and says which size to use', async () => {
  const out = mkdtempSync(join(tmpdir(), 'dconnect-repro-'));
  const r = await run('repro', '--only', 'fig5', '--runs', '1', '--size', '1MiB', '--out', out);
  assert.equal(r.code, 1);
  assert.match(r.stdout, /FAIL Fig\. 5 x1 direct/);
  assert.match(r.stderr, /the paper's bounds describe its 1 GB moves; in moves of 1 MiB .* Try --size 16MiB or more/);
});
