/**
 * Every file the project's prose cites exists: a `docs/...`, `presets/...`, `tools/...` or `src/...`
 * path named in the README, the docs, the presets or a source comment (issue 21: a preset cited a
 * docs/live.md that was never written).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

function files(dir: string, ext: RegExp): string[] {
  return readdirSync(join(ROOT, dir)).flatMap((f) => {
    const p = join(dir, f);
    return statSync(join(ROOT, p)).isDirectory() ? files(p, ext) : ext.test(f) ? [p] : [];
  });
}

test('every docs/, presets/, tools/ and src/ file the prose cites exists', () => {
  const sources = ['README.md', ...files('docs', /\.md$/), ...files('presets', /\.ya?ml$/), ...files('src', /\.ts$/)];
  const missing: string[] = [];
  for (const s of sources) {
    const text = readFileSync(join(ROOT, s), 'utf8');
    for (const m of text.matchAll(/\b((?:docs|presets|tools)\/[\w./-]*\w\.(?:md|ya?ml|lua|png|svg)|src\/[\w/-]+\.ts)\b/g)) {
      if (!existsSync(join(ROOT, m[1]))) missing.push(`${s} cites ${m[1]}`);
    }
  }
  assert.deepEqual(missing, []);
});
