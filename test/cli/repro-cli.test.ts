import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const run = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

test('repro writes JSON, SVG, PNG and the report, and --json prints one object', () => {
  const out = mkdtempSync(join(tmpdir(), 'dconnect-repro-'));
  const r = run('repro', '--runs', '1', '--size', '2MiB', '--out', out, '--json');
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
});

test('sweep refuses an unknown parameter, listing the valid ones', () => {
  const r = run('sweep', '--param', 'ssd.speed=1,2');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /BAD_PARAM/);
  assert.match(r.stderr, /ssd\.writeMBps/);
});
