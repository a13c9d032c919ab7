/**
 * The library's public surface (issue 22): the API report `etc/dconnect.api.md` (API Extractor) changes
 * only on purpose, and the API reference (TypeDoc) builds without a warning, so every type a public
 * call takes or returns is documented and exported.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Extractor, ExtractorConfig } from '@microsoft/api-extractor';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

test('the public API is what etc/dconnect.api.md records', () => {
  const config = ExtractorConfig.loadFileAndPrepare(join(repo, 'api-extractor.json'));
  const messages: string[] = [];
  const r = Extractor.invoke(config, { localBuild: false, messageCallback: (m) => { if (m.logLevel === 'error' || m.logLevel === 'warning') messages.push(m.text); m.handled = true; } });
  assert.ok(r.succeeded, `the public API differs from etc/dconnect.api.md (${r.errorCount} errors, ${r.warningCount} warnings: ${messages.join('; ')}). If the change is on purpose: npm run docs:api, then commit etc/dconnect.api.md`);
  assert.equal(r.apiReportChanged, false);
});

test('the API reference builds without a warning (TypeDoc)', () => {
  const r = spawnSync(process.execPath, [join(repo, 'node_modules/typedoc/bin/typedoc'), '--emit', 'none'], { cwd: repo, encoding: 'utf8', timeout: 240_000 });
  assert.equal(r.status, 0, `typedoc failed:\n${r.stdout}\n${r.stderr}`);
});
