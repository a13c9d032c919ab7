/**
 * The layering of docs/architecture.md, checked over every import under src/: a module may import
 * only from its own layer or a layer below it, and some pairs are forbidden outright even where the
 * order would allow them (devices see only their PCIe port, never the bridges or Ethernet; model
 * layers never import live-mode code, which may use the wall clock).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../../../src/', import.meta.url));

/** Bottom to top, as in docs/architecture.md's table. */
export const LAYERS = ['core', 'pcie', 'ethernet', 'expether', 'devices', 'net', 'host', 'topology', 'runtime', 'experiments', 'cli'] as const;
/** Outside the model layers (issue "Live fabric"): may use async and the wall clock; the model may not import it. */
const LIVE = 'live';
const MODEL = new Set(['core', 'pcie', 'ethernet', 'expether', 'devices', 'net', 'host', 'topology', 'runtime']);
const FORBIDDEN: [string, string, string][] = [
  ['devices', 'expether', 'a device sees only its PCIe port, not the bridges'],
  ['devices', 'ethernet', 'a device sees only its PCIe port, not Ethernet'],
  ['host', 'runtime', 'host software is not told how it is run'],
  ['host', 'topology', 'host software learns the fabric by enumeration, not from the topology'],
];

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

const layerOf = (file: string) => relative(SRC, file).split(sep)[0];

/** Every relative import or re-export of a file, resolved to the layer it points into. */
function importsOf(file: string): { spec: string; layer: string }[] {
  const text = readFileSync(file, 'utf8');
  const specs = [...text.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s+'(\.[^']+)'/g), ...text.matchAll(/import\(\s*'(\.[^']+)'\s*\)/g)].map((m) => m[1]);
  return specs.map((spec) => ({ spec, layer: layerOf(resolve(dirname(file), spec)) }));
}

function violations(): string[] {
  const out: string[] = [];
  for (const file of files(SRC)) {
    const from = layerOf(file);
    if (from.endsWith('.ts')) continue; // a file directly under src/ would belong to no layer
    const fromRank = (LAYERS as readonly string[]).indexOf(from);
    for (const { spec, layer: to } of importsOf(file)) {
      if (to === from) continue;
      const where = `${relative(SRC, file)} imports '${spec}'`;
      if (to === LIVE && MODEL.has(from)) out.push(`${where}: the model layers never import live code`);
      const toRank = (LAYERS as readonly string[]).indexOf(to);
      if (fromRank >= 0 && toRank > fromRank) out.push(`${where}: ${from}/ may not import from ${to}/, a layer above it`);
      for (const [a, b, why] of FORBIDDEN) if (from === a && to === b) out.push(`${where}: ${why}`);
    }
  }
  return out;
}

test('every import under src/ points down the layer table (docs/architecture.md), and no forbidden pair appears', () => {
  assert.deepEqual(violations(), []);
});

/** The files `file` imports or re-exports (relative specifiers, type-only ones included), as .ts paths. */
function importedFiles(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specs = [...text.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s+'(\.[^']+)'/g), ...text.matchAll(/import\(\s*'(\.[^']+)'\s*\)/g)].map((m) => m[1]);
  return specs.map((spec) => resolve(dirname(file), spec).replace(/\.js$/, '.ts'));
}

/** The strongly connected components of more than one file (Tarjan): each is an import cycle. */
export function cycles(graph: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const scc: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      scc.push(w);
    } while (w !== v);
    if (scc.length > 1) out.push(scc.sort());
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return out;
}

test('no import cycle under src/, type-only imports included (a value import on a cycle fails at load)', () => {
  const graph = new Map(files(SRC).map((f) => [f, importedFiles(f)] as [string, string[]]));
  assert.deepEqual(cycles(graph).map((c) => c.map((f) => relative(SRC, f))), []);
  assert.deepEqual(cycles(new Map([['a', ['b']], ['b', ['c']], ['c', ['a']], ['d', ['a']]])), [['a', 'b', 'c']], 'the check finds a cycle when there is one');
});

test('every folder under src/ is a layer of the table or the live folder', () => {
  const folders = readdirSync(SRC).filter((n) => statSync(join(SRC, n)).isDirectory());
  for (const f of folders) assert.ok((LAYERS as readonly string[]).includes(f) || f === LIVE, `src/${f}/ is in no layer of docs/architecture.md`);
});

test('the check sees a violation when there is one (import parsing works on this source)', () => {
  const found = importsOf(fileURLToPath(new URL('../../../src/runtime/moves.ts', import.meta.url)));
  assert.ok(found.some((i) => i.layer === 'topology'), 'runtime/moves.ts imports the builder');
  assert.ok(found.some((i) => i.layer === 'host'), 'and the DC operator');
});

/** Wall clocks, timers and unseeded randomness: what model code may never use (live/ and the CLI may). */
const NONDETERMINISM = /\b(Date\.now|performance\.now|new Date\(|setTimeout|setInterval|setImmediate|Math\.random|process\.hrtime)\b/;

test('the model layers read no wall clock, set no timer and draw no unseeded random number', () => {
  const found: string[] = [];
  for (const file of files(SRC)) {
    if (!MODEL.has(layerOf(file))) continue;
    readFileSync(file, 'utf8')
      .split('\n')
      .forEach((line, i) => {
        const code = line.replace(/\/\/.*$/, '');
        if (/^\s*\*/.test(code)) return; // a doc comment line
        if (NONDETERMINISM.test(code)) found.push(`${relative(SRC, file)}:${i + 1}: ${line.trim()}`);
      });
  }
  assert.deepEqual(found, []);
  assert.ok(NONDETERMINISM.test('const t = performance.now();'), 'the pattern catches a clock read');
});
