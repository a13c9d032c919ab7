/**
 * dconnect as a library (src/index.ts, package.json `exports`): the packed package, installed in a
 * temporary project, runs docs/examples/library.mjs (a copy, a cancelled background run, an error a
 * script matches); and the background runner gives the result the same call gives on this thread,
 * and rejects with ABORTED when cancelled.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DconnectError, loadTopology, runMoves, runMovesInBackground } from '../../src/index.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

test('the packed package imports as `dconnect` from another project and runs the documented example', { timeout: 120_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'dconnect-lib-'));
  try {
    const pack = spawnSync('npm', ['pack', '--ignore-scripts', '--pack-destination', dir], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    assert.equal(pack.status, 0, pack.stderr);
    const tgz = readdirSync(dir).find((f) => f.endsWith('.tgz'))!;
    const x = spawnSync('tar', ['-xzf', tgz], { cwd: dir, encoding: 'utf8' });
    assert.equal(x.status, 0, x.stderr);
    mkdirSync(join(dir, 'node_modules'));
    renameSync(join(dir, 'package'), join(dir, 'node_modules', 'dconnect'));
    // The package's dependencies, as npm would install them (from this checkout's node_modules: no network).
    const deps = Object.keys((JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }).dependencies);
    for (const d of deps) {
      mkdirSync(dirname(join(dir, 'node_modules', d)), { recursive: true });
      symlinkSync(join(ROOT, 'node_modules', d), join(dir, 'node_modules', d));
    }
    copyFileSync(join(ROOT, 'docs', 'examples', 'library.mjs'), join(dir, 'library.mjs'));
    const r = spawnSync(process.execPath, ['library.mjs'], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /direct [\d.]+ MB\/s, conventional [\d.]+ MB\/s, both verified: true/);
    assert.match(r.stdout, /direct is \d+% faster/);
    assert.match(r.stdout, /serve through nic0: [\d.]+ MB\/s, \d+ frames, verified: true/);
    assert.match(r.stdout, /progress: \d+ of 1073741824 bytes\ncancelled: ABORTED/);
    assert.match(r.stdout, /error UNKNOWN_DEVICE: no block device 'sdz'/);
    const types = readFileSync(join(dir, 'node_modules', 'dconnect', 'dist', 'src', 'index.d.ts'), 'utf8');
    assert.match(types, /runMovesInBackground/, 'the package ships its types');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a background run gives the result of the same call on this thread; a cancelled one rejects with ABORTED', { timeout: 120_000 }, async () => {
  const req = { topology: loadTopology('paper-2012'), pairs: [{ src: 'sda', srcOffset: 0, dst: 'sdb', dstOffset: 0 }], lengthBytes: 8 << 20, via: 'dc-buffer' as const, seed: 3 };
  const seen: number[] = [];
  const background = await runMovesInBackground(req, { onProgress: (d) => seen.push(d) });
  assert.deepEqual(background, runMoves(req));
  assert.ok(seen.length > 0 && seen.every((d, i) => i === 0 || d >= seen[i - 1]), 'progress rises');
  const stop = new AbortController();
  const long = runMovesInBackground({ ...req, lengthBytes: 1 << 30, fidelity: 'full' }, { signal: stop.signal, onProgress: () => stop.abort() });
  await assert.rejects(long, (e: unknown) => e instanceof DconnectError && e.code === 'ABORTED');
  const pre = new AbortController();
  pre.abort();
  await assert.rejects(runMovesInBackground(req, { signal: pre.signal }), (e: unknown) => e instanceof DconnectError && e.code === 'ABORTED');
  await assert.rejects(runMovesInBackground({ ...req, pairs: [{ src: 'sda', srcOffset: 0, dst: 'sdz', dstOffset: 0 }] }), (e: unknown) => e instanceof DconnectError && e.code === 'UNKNOWN_DEVICE');
});
