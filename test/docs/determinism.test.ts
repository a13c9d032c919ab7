import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../../../src/', import.meta.url));
/** Layers that make up the model: they get time and randomness injected, never from the platform. */
const MODEL_LAYERS = ['core', 'pcie', 'ethernet', 'expether', 'devices', 'net', 'host', 'topology', 'runtime'];
const FORBIDDEN = /\b(Date\.now|Math\.random|setTimeout|setInterval|setImmediate|performance\.now|process\.hrtime)\b|new Promise\b|\basync\b/;

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

test('model code reads no clock, draws no platform randomness and uses no timers or promises', () => {
  const offenders: string[] = [];
  for (const layer of MODEL_LAYERS) {
    for (const f of files(join(SRC, layer))) {
      readFileSync(f, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          const code = line.replace(/\/\/.*$/, '').replace(/^\s*\*.*$/, '');
          if (FORBIDDEN.test(code)) offenders.push(`${f.slice(SRC.length)}:${i + 1}: ${line.trim()}`);
        });
    }
  }
  assert.deepEqual(offenders, []);
});
